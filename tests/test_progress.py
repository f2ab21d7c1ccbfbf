"""Long stretches say how far they are: decoding an image folder, and FGSM one line per strength."""

from __future__ import annotations

import logging

import torch

from mixupexp.data.datasets import load_data
from mixupexp.models.networks import build_model
from mixupexp.training.metrics import fgsm_accuracy
from tests.conftest import compose_config
from tests.test_data import folder_cfg, make_folder


def test_decoding_logs_its_progress_without_a_terminal(tmp_path, caplog):
    root = make_folder(tmp_path / "set", per_class=4)  # 8 images per split
    with caplog.at_level(logging.INFO, logger="mixupexp"):
        load_data(folder_cfg(root, tmp_path))
    messages = [r.getMessage() for r in caplog.records]
    train = [m for m in messages if m.startswith(f"decoding {root}/train")]
    assert train[0] == f"decoding {root}/train: 8 images"
    assert [m.split(" (")[0] for m in train[1:-1]] == [f"decoding {root}/train: {n}/8 images" for n in (2, 4, 6)]
    assert train[-1].startswith(f"decoding {root}/train: 8 images in ")
    assert any(m.startswith(f"decoding {root}/test: 8 images in ") for m in messages)


def test_fgsm_logs_one_line_per_strength_and_keeps_its_results(caplog):
    cfg = compose_config(["data=synthetic", "data.image_size=16", "model.widths=[8,8,8,8]", "model.hidden=16"])
    torch.manual_seed(0)
    model = build_model(cfg.model, 10, (3, 16, 16), torch.full((3,), 0.5), torch.full((3,), 0.25))
    images = torch.randint(0, 256, (50, 3, 16, 16), dtype=torch.uint8)
    labels = torch.randint(0, 10, (50,))
    with caplog.at_level(logging.INFO, logger="mixupexp"):
        acc = fgsm_accuracy(model, images, labels, [0, 2, 8], 20, torch.device("cpu"))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("FGSM accuracy at")]
    assert [line.split(":")[0] for line in lines] == [f"FGSM accuracy at eps={e}/255" for e in (0, 2, 8)]
    assert [f"{acc[e]:.2f}%" in line for e, line in zip((0, 2, 8), lines)] == [True] * 3
    model.eval()
    with torch.no_grad():
        clean = 100.0 * (model(images.float() / 255).argmax(1) == labels).sum().item() / len(labels)
    assert acc[0] == clean
