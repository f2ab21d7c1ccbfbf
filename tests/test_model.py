import torch

from mixupexp.model import SimpleCNN


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
