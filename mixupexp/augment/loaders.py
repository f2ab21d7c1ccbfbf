"""The training batches of the study: every drawn image mixed, with probability `ratio`, with a partner drawn from
the whole training set by `pair` (the study's mixup_pair unless a per-sample method gives its own; augment/mixup.py
holds the math)."""

from __future__ import annotations

import torch

from mixupexp.augment.mixup import draw_mixing, mixup_pair, one_hot


class MixupDataset(torch.utils.data.Dataset):
    """The study's data set: returns (image in [0, 1], soft label); mixes on the fly with probability `ratio`.

    Images are held as uint8 (N×C×H×W). With ratio = 0 (or augment=none) it is a plain data set.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, num_classes: int, ratio: float, alpha: float,
                 image_transform=None, pair=mixup_pair):
        self.images, self.labels = images, labels
        self.num_classes, self.ratio, self.alpha, self.pair = num_classes, ratio, alpha, pair
        self.image_transform = image_transform

    def __len__(self) -> int:
        return len(self.labels)

    def _item(self, i) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[i]
        if self.image_transform is not None:
            image = self.image_transform(image[None])[0]
        return image.float().div_(255), one_hot(self.labels[i], self.num_classes)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self._item(i)
        if self.ratio > 0:
            partner, lam = draw_mixing((), len(self), self.ratio, self.alpha)
            if lam < 1:
                x, y = self.pair(x, y, *self._item(partner), lam)
        return x, y


class DeviceBatches:
    """Training batches from a training set resident on `images.device`, mixed with vectorised tensor ops.

    Same distribution as `MixupDataset`: every sample of a batch is mixed with probability `ratio`, with its own
    lambda and a partner drawn uniformly from the whole training set. Shuffled each epoch; the last partial
    batch is dropped so that every step has the same shapes (what a CUDA graph needs). Nothing here waits for
    the device.
    """

    def __init__(self, images, labels, num_classes: int, batch_size: int, ratio: float, alpha: float,
                 image_transform=None, pair=mixup_pair):
        if batch_size > len(labels):
            batch_size = len(labels)
        self.images, self.labels, self.pair = images, labels, pair
        self.num_classes, self.batch_size, self.ratio, self.alpha = num_classes, batch_size, ratio, alpha
        self.image_transform = image_transform

    def __len__(self) -> int:
        return len(self.labels) // self.batch_size

    def _batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = self.images[index]
        if self.image_transform is not None:
            images = self.image_transform(images)
        return images.float().div_(255), one_hot(self.labels[index], self.num_classes)

    def __iter__(self):
        n, device = len(self.labels), self.labels.device
        order = torch.randperm(n, device=device)
        for step in range(len(self)):
            x, y = self._batch(order[step * self.batch_size : (step + 1) * self.batch_size])
            if self.ratio > 0:
                partner, lam = draw_mixing((self.batch_size,), n, self.ratio, self.alpha, device)
                x, y = self.pair(x, y, *self._batch(partner), lam)
            yield x, y
