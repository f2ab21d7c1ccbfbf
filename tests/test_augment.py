from types import SimpleNamespace

import pytest
import torch
from scipy.stats import kstest

from mixupexp.augment.batch import (
    HiddenMix,
    HiddenMixer,
    cutmix,
    cutmix_box,
    mix_with_permutation,
    smooth_labels,
)
from mixupexp.augment.methods import build_augmentation
from mixupexp.augment.mixup import one_hot
from mixupexp.augment.standard import random_crop_flip
from mixupexp.models.networks import SimpleCNN
from mixupexp.training.engine import TrainStep
from mixupexp.training.loss import soft_cross_entropy


def batch_mixer(method: str, alpha: float, ratio: float, label_smoothing: float = 0.0):
    """What `augment=<method>` applies to each drawn batch, built through the registry as a run builds it."""
    cfg = SimpleNamespace(name=method, alpha=alpha, ratio=ratio, label_smoothing=label_smoothing, mix_after_blocks=[0])
    return build_augmentation(cfg).batch


def _labelled_batch(n=32, size=8):
    """Image i is the constant i / n and has class i: a mixed image's mean is its label's expected class / n."""
    x = (torch.arange(n, dtype=torch.float64) / n).reshape(n, 1, 1, 1).expand(n, 3, size, size).clone()
    return x, one_hot(torch.arange(n), n).double()


def _own_weights(y):
    """The weight of each sample's own class (its lambda where its partner is another sample)."""
    return y.diagonal()


@pytest.mark.parametrize("method", ["mixup_batch", "cutmix"])
def test_batch_methods_mix_images_and_labels_alike_with_one_lambda_per_batch(method):
    torch.manual_seed(0)
    n = 32
    mixer = batch_mixer(method, alpha=1.0, ratio=1.0)
    for _ in range(20):
        x0, y0 = _labelled_batch(n)
        x, y = mixer(x0, y0)
        assert torch.allclose(y.sum(1), torch.ones(n, dtype=y.dtype))
        assert (y >= 0).all() and x.min() >= 0 and x.max() <= 1
        # the share of each image that comes from each class is exactly its label
        assert torch.allclose(x.mean(dim=(1, 2, 3)), y @ (torch.arange(n, dtype=y.dtype) / n))
        moved = _own_weights(y) < 1
        if moved.any():  # one lambda for the batch (samples whose partner is themselves keep weight 1)
            lam = _own_weights(y)[moved]
            assert torch.allclose(lam, lam[0].expand_as(lam)) and 0 <= lam[0] <= 1


@pytest.mark.parametrize("method", ["mixup_batch", "cutmix"])
def test_ratio_is_the_probability_that_a_batch_is_mixed(method):
    torch.manual_seed(1)
    mixer = batch_mixer(method, alpha=1.0, ratio=0.5)
    x0, y0 = _labelled_batch(16)
    mixed = sum(int(not torch.equal(mixer(x0, y0)[1], y0)) for _ in range(400))
    assert mixed / 400 == pytest.approx(0.5, abs=0.1)  # 4 binomial standard errors
    assert all(torch.equal(batch_mixer(method, 1.0, 0.0)(x0, y0)[0], x0) for _ in range(10))


def test_batch_mixup_lambda_is_beta_distributed():
    torch.manual_seed(2)
    mixer = batch_mixer("mixup_batch", alpha=1.0, ratio=1.0)
    lams = []
    for _ in range(300):
        own = _own_weights(mixer(*_labelled_batch(8))[1])
        if (own < 1).any():  # else the permutation was the identity (p = 1/8!)
            lams.append(own[own < 1][0].item())
    # Beta(1, 1) is uniform on [0, 1]
    assert kstest(lams, "uniform").pvalue > 0.001


def test_mix_with_permutation_is_the_mixup_formula():
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    out = mix_with_permutation(t, 0.25, torch.tensor([1, 2, 0]))
    assert torch.allclose(out, torch.tensor([[0.25, 0.75], [1.5, 1.75], [1.25, 0.5]]))


@pytest.mark.parametrize("height,width", [(32, 32), (16, 24), (7, 5)])
def test_cutmix_box_area_is_exactly_one_minus_corrected_lambda(height, width):
    torch.manual_seed(3)
    for lam in torch.linspace(0, 1, 41).tolist():
        for _ in range(10):
            (top, bottom, left, right), corrected = cutmix_box(lam, height, width)
            assert 0 <= top <= bottom <= height and 0 <= left <= right <= width
            assert (bottom - top) * (right - left) == pytest.approx((1 - corrected) * height * width, abs=1e-9)
            assert 0 <= corrected <= 1
    assert cutmix_box(1.0, height, width)[1] == 1.0  # lambda 1 pastes nothing


def test_cutmix_pastes_a_box_of_the_partner_matching_the_corrected_lambda():
    torch.manual_seed(4)
    x0, y0 = _labelled_batch(16, size=32)
    perm = torch.roll(torch.arange(16), 1)  # every partner is another image
    for lam in (0.1, 0.5, 0.9):
        x, y, corrected = cutmix(x0, y0, lam, perm)
        from_partner = (x != x0).all(dim=1)  # H×W mask per image
        assert torch.equal(from_partner.sum(dim=(1, 2)).double(), torch.full((16,), (1 - corrected) * 32 * 32))
        assert torch.equal(from_partner, from_partner[:1].expand_as(from_partner))  # one box for the batch
        assert torch.allclose(y, corrected * y0 + (1 - corrected) * y0[perm])
        assert not torch.equal(x, x0) or corrected == 1


def test_label_smoothing_values():
    y = one_hot(torch.tensor([3, 0]), 10)
    smooth = smooth_labels(y, 0.1)
    assert torch.allclose(smooth[0, 3], torch.tensor(0.91)) and torch.allclose(smooth[0, :3], torch.tensor(0.01))
    assert torch.allclose(smooth.sum(1), torch.ones(2))
    soft = torch.tensor([[0.3, 0.7, 0.0, 0.0]])
    assert torch.allclose(smooth_labels(soft, 0.2), torch.tensor([[0.29, 0.61, 0.05, 0.05]]))


def test_label_smoothing_composes_with_every_method_and_none_keeps_images():
    x0, y0 = _labelled_batch(8)
    for method in ("none", "mixup", "manifold_mixup"):
        x, y = batch_mixer(method, 1.0, 1.0, label_smoothing=0.2)(x0, y0)
        assert torch.equal(x, x0) and torch.allclose(y, smooth_labels(y0, 0.2))
        assert batch_mixer(method, 1.0, 1.0)(x0, y0)[1] is y0  # no smoothing unless set
    torch.manual_seed(5)
    x, y = batch_mixer("cutmix", 1.0, 1.0, label_smoothing=0.2)(x0, y0)
    assert torch.allclose(y.sum(1), torch.ones(8, dtype=y.dtype)) and y.min() >= 0.2 / 8 - 1e-12


def test_hidden_mixer_draws_configured_blocks_lambdas_and_permutations():
    torch.manual_seed(6)
    mixer = HiddenMixer(alpha=2.0, ratio=1.0, after_blocks=[0, 2, 3])
    plans = [mixer.draw(10, "cpu") for _ in range(300)]
    assert {p.after_blocks for p in plans} == {0, 2, 3}
    assert all(0 <= p.lam <= 1 and sorted(p.perm.tolist()) == list(range(10)) for p in plans)
    assert HiddenMixer(2.0, 0.0, [0]).draw(10, "cpu") is None


def _tiny_cnn():
    return SimpleCNN(4, (3, 16, 16), torch.full((3,), 0.5), torch.full((3,), 0.25), widths=[4, 8, 8, 8], hidden=8)


@pytest.mark.parametrize("after_blocks", [0, 1, 2, 3, 4])
def test_manifold_mix_mixes_the_hidden_state_after_that_many_blocks(after_blocks):
    torch.manual_seed(7)
    model = _tiny_cnn().eval()  # eval: each sample's hidden state does not depend on the others
    stages = [*model.blocks, model.head]
    seen = []
    stages[after_blocks].register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    x = torch.rand(6, 3, 16, 16)
    plan = HiddenMix(after_blocks, 0.3, torch.randperm(6))
    plain = model(x)
    mixed = model(x, mix=plan)
    assert mixed.shape == plain.shape == (6, 4)
    assert torch.allclose(seen[1], 0.3 * seen[0] + 0.7 * seen[0][plan.perm], atol=1e-6)
    if after_blocks == 0:  # mixing the normalised input is mixing the image
        assert torch.allclose(mixed, model(0.3 * x + 0.7 * x[plan.perm]), atol=1e-5)


def test_train_step_mixes_labels_with_the_plan_that_mixes_the_hidden_state():
    model = _tiny_cnn()
    step = TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.0), None, torch.device("cpu"),
                     HiddenMixer(alpha=1.0, ratio=1.0, after_blocks=[0]))
    x, y = torch.rand(8, 3, 16, 16), one_hot(torch.randint(4, (8,)), 4)
    torch.manual_seed(8)
    plan = step.hidden_mixer.draw(8, "cpu")
    torch.manual_seed(8)
    loss = step(x, y)
    expected = soft_cross_entropy(model(plan.lam * x + (1 - plan.lam) * x[plan.perm]), plan(y))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert plan(y).sum(1).allclose(torch.ones(8))


def _crop_flip_candidates(image, padding):
    c, h, w = image.shape
    padded = torch.nn.functional.pad(image, (padding,) * 4)
    for top in range(2 * padding + 1):
        for left in range(2 * padding + 1):
            crop = padded[:, top : top + h, left : left + w]
            yield (top, left, False), crop
            yield (top, left, True), crop.flip(-1)


def test_random_crop_flip_gives_each_image_its_own_padded_crop_and_flip():
    torch.manual_seed(9)
    n = 200
    images = (torch.arange(3 * 6 * 6) % 250 + 1).to(torch.uint8).reshape(1, 3, 6, 6).expand(n, 3, 6, 6)
    out = random_crop_flip(images, padding=2)
    assert out.shape == images.shape and out.dtype == torch.uint8
    params = []
    for image, result in zip(images, out):
        params.append(next(p for p, crop in _crop_flip_candidates(image, 2) if torch.equal(crop, result)))
    offsets = {(top, left) for top, left, _ in params}
    assert len(offsets) == 25  # every offset of the 5×5 occurs in 200 draws (each misses with p < 1e-3)
    assert sum(flip for _, _, flip in params) / n == pytest.approx(0.5, abs=0.15)
