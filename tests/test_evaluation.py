import pytest
import torch
from torch import nn

from mixupexp.config.schema import ConfigError
from mixupexp.training.metrics import (
    evaluate,
    expected_calibration_error,
    fgsm_accuracy,
    fgsm_key,
)
from mixupexp.training.validate import validate

from .conftest import compose_config

CPU = torch.device("cpu")


def test_ece_hand_computed():
    # bin (14/15, 1]: 4 samples, accuracy 0.75, confidence 0.95 -> 4/8 * 0.20 = 0.1000
    # bin (9/15, 10/15]: 2 samples, accuracy 0.5, confidence 0.65 -> 2/8 * 0.15 = 0.0375
    # bin (5/15, 6/15]: 2 samples, accuracy 0, confidence 0.35 -> 2/8 * 0.35 = 0.0875
    confidence = torch.tensor([0.95, 0.95, 0.95, 0.95, 0.65, 0.65, 0.35, 0.35])
    correct = torch.tensor([1, 1, 1, 0, 1, 0, 0, 0], dtype=torch.bool)
    assert expected_calibration_error(confidence, correct) == pytest.approx(22.5)


def test_ece_uses_15_bins():
    # 0.62 and 0.68 share a bin of a 10-bin ECE ((0.6, 0.7]: ECE 15 %) but not of a 15-bin one (0.6667 between).
    confidence, correct = torch.tensor([0.62, 0.68]), torch.tensor([True, False])
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.5 * 0.38 * 100 + 0.5 * 0.68 * 100)
    assert expected_calibration_error(confidence, correct, num_bins=10) == pytest.approx(15.0)


def test_ece_is_zero_when_confidence_matches_accuracy():
    confidence = torch.tensor([1.0, 1.0, 0.5, 0.5])
    correct = torch.tensor([True, True, True, False])
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.0)


class MeanThreshold(nn.Module):
    """Class 1 when the mean pixel exceeds 0.5; normalises its input like the real model and records its range."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(0.5))
        self.register_buffer("std", torch.tensor(0.25))
        self.seen = []

    def forward(self, x):
        self.seen.append((x.min().item(), x.max().item()))
        z = ((x - self.mean) / self.std).mean(dim=(1, 2, 3))
        return torch.stack([torch.zeros_like(z), z], dim=1)


def constant_images(values: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.tensor(values, dtype=torch.uint8).reshape(-1, 1, 1, 1).expand(-1, 3, 4, 4).contiguous()
    return images, (torch.tensor(values) > 127.5).long()


def test_fgsm_known_answers_in_pixel_space():
    # Distances from the threshold 127.5 (in 1/255): 127.5, 27.5, 7.5, 1.5 | 2.5, 7.5, 32.5, 127.5. FGSM moves
    # every pixel by eps towards the other class, so an image flips when its distance is below eps.
    images, labels = constant_images([0, 100, 120, 126, 130, 135, 160, 255])
    model = MeanThreshold()
    accuracy = fgsm_accuracy(model, images, labels, [0, 1, 2, 4, 8, 255], batch_size=3, device=CPU)
    assert accuracy == {0: 100.0, 1: 100.0, 2: 87.5, 4: 75.0, 8: 50.0, 255: 0.0}
    assert all(0.0 <= low and high <= 1.0 for low, high in model.seen)  # perturbed images are clipped to [0, 1]


def test_fgsm_at_zero_equals_clean_accuracy_and_falls_with_eps():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    labels = torch.randint(0, 4, (64,))
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
    with torch.no_grad():  # a model that is right on most of these images: fit the labels by least squares
        x = images.flatten(1).float() / 255
        target = nn.functional.one_hot(labels, 4).float() * 10
        solution = torch.linalg.lstsq(torch.cat([x, torch.ones(64, 1)], 1), target).solution
        model[1].weight.copy_(solution[:-1].T)
        model[1].bias.copy_(solution[-1])
    clean = evaluate(model, images, labels, 16, CPU)
    accuracy = fgsm_accuracy(model, images, labels, [0, 1, 4, 16], 16, CPU)
    assert clean.acc > 90 and accuracy[0] == clean.acc
    assert accuracy[1] >= accuracy[4] >= accuracy[16] and accuracy[16] < clean.acc - 30


def test_fgsm_off_runs_nothing():
    model = MeanThreshold()
    assert fgsm_accuracy(model, *constant_images([0, 255]), [], 2, CPU) == {} and model.seen == []


def test_fgsm_key_names():
    assert [fgsm_key(e) for e in (1.0, 4, 0.5)] == ["fgsm_acc_1", "fgsm_acc_4", "fgsm_acc_0.5"]


def test_fgsm_eps_config():
    assert list(compose_config().eval.fgsm_eps) == [1, 2, 4, 8]
    validate(compose_config(["eval.fgsm_eps=[]"]))
    with pytest.raises(ConfigError, match=r"eval.fgsm_eps=\[-1.0\] must be values in \[0, 255\]"):
        validate(compose_config(["eval.fgsm_eps=[-1]"]))


class RecordsMode(nn.Module):
    """A BatchNorm model that records whether each forward pass ran in training mode."""

    def __init__(self):
        super().__init__()
        self.norm = nn.BatchNorm2d(3)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
        self.modes = []

    def forward(self, x):
        self.modes.append(self.training)
        return self.head(self.norm(x))


@pytest.mark.parametrize("metric", ["evaluate", "fgsm"])
def test_evaluation_runs_in_eval_mode_and_leaves_the_model_unchanged(metric):
    images, labels = constant_images([0, 100, 120, 126, 130, 135, 160, 255])
    model = RecordsMode()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    if metric == "evaluate":
        evaluate(model, images, labels, 3, CPU)
    else:
        fgsm_accuracy(model, images, labels, [0, 4], 3, CPU)
    assert model.modes and not any(model.modes)  # BatchNorm used its running statistics throughout
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # and did not update them
    assert model.training  # handed back in training mode


def test_a_run_trained_in_bf16_is_evaluated_in_fp32(tmp_path):
    """Metrics mean the same on every device: a bf16-trained run's test accuracy and NLL are those of its final
    weights evaluated in fp32."""
    from mixupexp.data.datasets import load_data
    from mixupexp.models.networks import build_model
    from mixupexp.training.run import train

    from .conftest import TINY, compose_config

    cfg = compose_config([*TINY, "trainer.precision=bf16", "trainer.keep_checkpoint=true", "eval.fgsm_eps=[]"])
    result = train(cfg, tmp_path)
    assert result["precision"] == "bfloat16"
    data = load_data(cfg.data)
    model = build_model(cfg.model, data.num_classes, tuple(data.train_images.shape[1:]), *data.channel_stats())
    model.load_state_dict(torch.load(tmp_path / "checkpoint.pt", weights_only=True)["model"])
    model.eval()
    with torch.no_grad():  # fp32 by hand: no autocast anywhere
        logits = model(data.test_images.float() / 255)
    accuracy = 100.0 * (logits.argmax(1) == data.test_labels).float().mean().item()
    nll = torch.nn.functional.cross_entropy(logits, data.test_labels).item()
    assert result["test_acc"] == pytest.approx(accuracy, abs=1e-9)
    assert result["test_loss"] == pytest.approx(nll, rel=1e-5)


def reference_evaluation(model, images, labels, batch_size):
    """The evaluation as it was before BatchNorm was folded: the model itself, in eval mode, under no_grad."""
    model.eval()
    logits = []
    with torch.no_grad():
        for start in range(0, len(labels), batch_size):
            x = images[start : start + batch_size].float().div(255).contiguous(memory_format=torch.channels_last)
            logits.append(model(x).float())
    model.train()
    logits = torch.cat(logits)
    confidence, predicted = logits.softmax(1).max(1)
    return (torch.nn.functional.cross_entropy(logits, labels).item(), predicted,
            expected_calibration_error(confidence, predicted == labels))


@pytest.mark.parametrize("name", ["simple_cnn", "preact_resnet18"])
def test_folded_evaluation_gives_the_predictions_of_the_model_itself(name):
    from mixupexp.models.networks import build_model
    from mixupexp.training.metrics import folded_for_inference

    torch.manual_seed(0)
    overrides = [f"model={name}"] + (["model.widths=[8,16,16,16]", "model.hidden=32"] if name == "simple_cnn" else [])
    cfg = compose_config(overrides)
    model = build_model(cfg.model, num_classes=10, image_shape=(3, 32, 32), mean=torch.full((3,), 0.45),
                        std=torch.full((3,), 0.25)).to(memory_format=torch.channels_last)
    for module in model.modules():  # statistics and affine parameters far from their initial 0/1
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.2, 0.2)
    images = torch.randint(0, 256, (300, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 10, (300,))
    nll, predicted, ece = reference_evaluation(model, images, labels, 128)

    metrics = evaluate(model, images, labels, 128, CPU)
    assert metrics.acc == 100.0 * (predicted == labels).sum().item() / len(labels)
    assert metrics.loss == pytest.approx(nll, rel=1e-5)
    assert metrics.ece == pytest.approx(ece, abs=1e-4)
    assert model.training  # left in training mode, its BatchNorm layers where they were
    folded = folded_for_inference(model.eval())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules()) or name == "preact_resnet18"
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) > 0
