import pytest
import torch

from mixupexp.models.networks import SimpleCNN


def test_default_cnn_output_shape_and_structure():
    model = SimpleCNN(10, (3, 32, 32), torch.full((3,), 0.5), torch.full((3,), 0.25))
    assert model(torch.rand(5, 3, 32, 32)).shape == (5, 10)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 256]
    assert [lin.out_features for lin in linears] == [256, 10]


def test_model_normalises_its_input():
    mean, std = torch.tensor([0.2, 0.4, 0.6]), torch.tensor([0.1, 0.2, 0.3])
    model = SimpleCNN(3, (3, 16, 16), mean, std, widths=[4, 4, 4, 4], hidden=8).eval()
    seen = {}
    model.blocks[0].register_forward_pre_hook(lambda _, args: seen.setdefault("x", args[0]))
    model(mean.reshape(1, 3, 1, 1).expand(2, 3, 16, 16))
    assert torch.allclose(seen["x"], torch.zeros(2, 3, 16, 16), atol=1e-6)


def test_preact_resnet18_shape_structure_and_gradients():
    from mixupexp.models.networks import PreActResNet18

    torch.manual_seed(0)
    model = PreActResNet18(10, (3, 32, 32), torch.full((3,), 0.5), torch.full((3,), 0.25))
    logits = model(torch.rand(2, 3, 32, 32))
    assert logits.shape == (2, 10)
    logits.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    # stem + 8 blocks of 2 convs + 3 projection shortcuts; about 11.2 M parameters
    assert len(convs) == 20 and {c.out_channels for c in convs} == {64, 128, 256, 512}
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(11.17e6, rel=0.01)
    assert len(model.blocks) == 4


@pytest.mark.parametrize("after_blocks", [0, 1, 2, 4])
def test_preact_resnet18_manifold_mix_keeps_the_output_shape(after_blocks):
    from mixupexp.augment.batch import HiddenMix
    from mixupexp.models.networks import PreActResNet18

    model = PreActResNet18(5, (3, 16, 16), torch.zeros(3), torch.ones(3), widths=[8, 8, 16, 16]).eval()
    x = torch.rand(4, 3, 16, 16)
    plan = HiddenMix(after_blocks, 0.6, torch.tensor([1, 0, 3, 2]))
    mixed = model(x, mix=plan)
    assert mixed.shape == (4, 5) and not torch.allclose(mixed, model(x))
    if after_blocks == 0:
        assert torch.allclose(mixed, model(plan(x)), atol=1e-5)
