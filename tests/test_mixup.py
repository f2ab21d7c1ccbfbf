import math

import pytest
import torch

from mixupexp.augment.loaders import DeviceBatches, MixupDataset
from mixupexp.augment.mixup import draw_mixing, mixup_pair, one_hot, sample_lambda
from mixupexp.augment.standard import random_crop_flip


def test_lambda_is_beta_distributed_in_unit_interval():
    torch.manual_seed(0)
    lam = sample_lambda(0.2, (20000,))
    assert lam.min() >= 0 and lam.max() <= 1
    # Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)); alpha 0.2 puts most mass near 0 and 1.
    assert lam.mean().item() == pytest.approx(0.5, abs=0.02)
    assert lam.var().item() == pytest.approx(1 / (4 * 1.4), rel=0.05)


def test_mixup_pair_mixes_images_and_labels_with_the_same_lambda():
    x_i, x_j = torch.full((3, 4, 4), 1.0), torch.zeros(3, 4, 4)
    y_i, y_j = one_hot(torch.tensor(2), 5), one_hot(torch.tensor(4), 5)
    x, y = mixup_pair(x_i, y_i, x_j, y_j, torch.tensor(0.3))
    assert torch.allclose(x, torch.full((3, 4, 4), 0.3))
    assert torch.allclose(y, torch.tensor([0, 0, 0.3, 0, 0.7]))
    assert y.sum().item() == pytest.approx(1.0)


def test_mixup_pair_takes_one_lambda_per_sample_of_a_batch():
    x_i, x_j = torch.ones(2, 3, 2, 2), torch.zeros(2, 3, 2, 2)
    y_i, y_j = one_hot(torch.tensor([0, 1]), 3), one_hot(torch.tensor([2, 2]), 3)
    x, y = mixup_pair(x_i, y_i, x_j, y_j, torch.tensor([0.25, 1.0]))
    assert torch.allclose(x[0], torch.full((3, 2, 2), 0.25)) and torch.allclose(x[1], torch.ones(3, 2, 2))
    assert torch.allclose(y, torch.tensor([[0.25, 0, 0.75], [0, 1, 0]]))


def _dataset(n=50, ratio=0.2, alpha=0.2, classes=10):
    images = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8)
    return MixupDataset(images, torch.arange(n) % classes, classes, ratio, alpha)


def test_dataset_soft_labels_sum_to_one_and_images_stay_in_range():
    torch.manual_seed(1)
    ds = _dataset(ratio=1.0)
    for i in range(len(ds)):
        x, y = ds[i]
        assert y.sum().item() == pytest.approx(1.0, abs=1e-6)
        assert (y >= 0).all() and x.min() >= 0 and x.max() <= 1


def test_ratio_zero_is_identity():
    ds = _dataset(ratio=0.0)
    for i in range(len(ds)):
        x, y = ds[i]
        assert torch.equal(x, ds.images[i].float() / 255)
        assert torch.equal(y, one_hot(ds.labels[i], 10))


def test_fraction_mixed_matches_ratio():
    torch.manual_seed(2)
    n = 40000
    partner, lam = draw_mixing((n,), 1000, 0.2, 0.2)
    fraction = (lam < 1).float().mean().item()
    # binomial standard error sqrt(0.2 * 0.8 / n) = 0.002: 4 standard errors
    assert fraction == pytest.approx(0.2, abs=0.008)
    assert partner.min() >= 0 and partner.max() < 1000


def test_dataset_mixes_about_ratio_of_draws():
    torch.manual_seed(3)
    # every image has its own class, so a mixed draw (almost surely) yields a label that is not one-hot
    ds = _dataset(n=400, ratio=0.3, classes=400)
    draws = 4000
    mixed = sum(int(ds[i % 400][1].max() < 1) for i in range(draws))
    assert mixed / draws == pytest.approx(0.3, abs=4 * math.sqrt(0.3 * 0.7 / draws) + 0.005)


def test_device_batches_draw_from_the_same_distribution_as_the_dataset():
    """The vectorised path and the per-sample path: same mixed fraction, same lambda distribution."""
    n, classes, ratio, alpha = 512, 512, 0.25, 0.4
    images = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8)
    labels = torch.arange(n)

    def lambdas(samples):
        # with all-distinct labels the largest label weight is max(lam, 1 - lam), 1 when unmixed
        return torch.stack([y.max() for y in samples])

    torch.manual_seed(4)
    batches = DeviceBatches(images, labels, classes, batch_size=64, ratio=ratio, alpha=alpha)
    fast = lambdas([y for _ in range(6) for _, yb in batches for y in yb])
    ds = MixupDataset(images, labels, classes, ratio, alpha)
    slow = lambdas([ds[i % n][1] for i in range(len(fast))])
    fast_mixed, slow_mixed = fast[fast < 1], slow[slow < 1]
    se = math.sqrt(ratio * (1 - ratio) / len(fast))
    assert len(fast_mixed) / len(fast) == pytest.approx(ratio, abs=5 * se)
    assert len(slow_mixed) / len(slow) == pytest.approx(ratio, abs=5 * se)
    # max(lam, 1 - lam) for Beta(0.4, 0.4): same distribution (two-sample KS test)
    from scipy.stats import ks_2samp

    assert ks_2samp(fast_mixed.numpy(), slow_mixed.numpy()).pvalue > 0.001


def test_device_batches_have_fixed_shapes_and_cover_the_epoch():
    images = torch.randint(0, 256, (130, 3, 8, 8), dtype=torch.uint8)
    batches = DeviceBatches(images, torch.arange(130) % 10, 10, batch_size=32, ratio=0.0, alpha=0.2)
    shapes = [tuple(x.shape) for x, _ in batches]
    assert shapes == [(32, 3, 8, 8)] * 4  # 130 // 32 full batches; the last partial one is dropped


def test_image_transform_applies_to_every_image_before_mixing_in_both_paths():
    """A transform that blanks images shows it ran on the partners too: mixing blanks gives blanks."""
    images = torch.full((64, 3, 8, 8), 200, dtype=torch.uint8)
    blank = torch.zeros_like
    batches = DeviceBatches(images, torch.arange(64) % 4, 4, 16, ratio=1.0, alpha=1.0, image_transform=blank)
    assert all(x.abs().max() == 0 for x, _ in batches)
    ds = MixupDataset(images, torch.arange(64) % 4, 4, ratio=1.0, alpha=1.0, image_transform=blank)
    assert all(ds[i][0].abs().max() == 0 for i in range(64))


# Each of these hands a tensor's values to the host; on a GPU that makes the host wait for the device.
DEVICE_READS = ("__bool__", "__float__", "__int__", "__index__", "item", "tolist", "numpy")


def count_device_reads(monkeypatch) -> list[str]:
    """Patch every way of reading a tensor's values on the host, and `torch.tensor` (a copy from the host),
    to be recorded in the returned list."""
    reads = []
    for name in DEVICE_READS:
        real = getattr(torch.Tensor, name)

        def counted(self, *args, _real=real, _name=name, **kwargs):
            reads.append(_name)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    real_tensor = torch.tensor

    def counted_tensor(*args, **kwargs):
        reads.append("torch.tensor")
        return real_tensor(*args, **kwargs)

    monkeypatch.setattr(torch, "tensor", counted_tensor)
    return reads


@pytest.mark.parametrize("ratio", [0.0, 0.5, 1.0])
def test_an_epoch_of_device_batches_reads_nothing_back_from_the_device(monkeypatch, ratio):
    images = torch.randint(0, 256, (96, 3, 8, 8), dtype=torch.uint8)
    batches = DeviceBatches(images, torch.arange(96) % 10, 10, batch_size=16, ratio=ratio, alpha=0.2,
                            image_transform=random_crop_flip)
    with monkeypatch.context() as m:
        reads = count_device_reads(m)
        drawn = [x for x, _ in batches]
        found = list(reads)
        bool(torch.zeros(()) == 0)  # the counting itself works
        assert reads == found + ["__bool__"]
    assert len(drawn) == 6 and found == []


def test_lambda_draws_read_nothing_back_from_the_device(monkeypatch):
    with monkeypatch.context() as m:
        reads = count_device_reads(m)
        sample_lambda(0.2, (16,))
        draw_mixing((16,), 100, 0.5, 0.2)
        found = list(reads)
    assert found == []


def test_device_batches_draw_partners_from_the_whole_training_set():
    """Every sample its own class: a batch's labels then name its own samples and their partners. Partners from
    the same batch would name at most batch_size classes; from the whole set almost all of them are new."""
    n, batch_size = 64, 8
    torch.manual_seed(5)
    batches = DeviceBatches(torch.zeros(n, 3, 8, 8, dtype=torch.uint8), torch.arange(n), n, batch_size,
                            ratio=1.0, alpha=1.0)
    classes_per_batch = [int((y > 0).any(0).sum()) for _, y in batches]
    assert len(classes_per_batch) == n // batch_size
    assert min(classes_per_batch) > batch_size


def _partner_counts_bound(partners: torch.Tensor, n: int) -> None:
    """`partners`, drawn uniformly from all `n` images, cover nearly all of them and both halves alike: with
    4n draws the expected number of distinct partners is n (1 - e^-4) ≈ 0.98 n (sd ≈ 3 for n = 512), and the
    draws in the upper half are Binomial(4n, 1/2) (sd ≈ 23). Partners from the first batch_size images, or from
    the batch itself, fail both by far."""
    assert len(partners) == 4 * n
    assert len(torch.unique(partners)) >= 0.94 * n  # 480 of 512: more than 7 sd below the expectation
    upper = int((partners >= n // 2).sum())
    assert abs(upper - 2 * n) <= 5 * math.sqrt(n)  # 5 sd of Binomial(4n, 1/2)


def _partners_of(rows: torch.Tensor, own: torch.Tensor | None) -> torch.Tensor:
    """Each sample its own class: a mixed row's label holds its own class and its partner's (one class where the
    partner is itself). Without `own` (shuffled batches), the partners are what is left of every class named
    once the epoch's own samples, each once, are taken away."""
    named = [row.nonzero().flatten() for row in rows > 0]
    if own is not None:
        return torch.stack([(n[n != i] if len(n) > 1 else n)[0] for n, i in zip(named, own)])
    return torch.cat([n.repeat(2) if len(n) == 1 else n for n in named])


def test_partners_are_drawn_from_the_whole_training_set_in_both_paths():
    n, batch_size, epochs = 512, 16, 4
    images, labels = torch.zeros(n, 3, 2, 2, dtype=torch.uint8), torch.arange(n)
    torch.manual_seed(11)
    batches = DeviceBatches(images, labels, n, batch_size, ratio=1.0, alpha=1.0)
    rows = torch.cat([y for _ in range(epochs) for _, y in batches])
    named = _partners_of(rows, None)
    # Every image is its own sample once per epoch; the rest of what the labels name are the partners.
    counts = torch.bincount(named, minlength=n) - epochs
    assert counts.min() >= 0
    _partner_counts_bound(torch.repeat_interleave(torch.arange(n), counts), n)

    dataset = MixupDataset(images, labels, n, ratio=1.0, alpha=1.0)
    own = torch.arange(n).repeat(epochs)
    rows = torch.stack([dataset[int(i)][1] for i in own])
    _partner_counts_bound(_partners_of(rows, own), n)
