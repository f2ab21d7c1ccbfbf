import os
import urllib.error

import numpy as np
import pytest
import torch
from PIL import Image

import mixupexp.data.folders as data_module
from mixupexp.data.datasets import DataError, load_data

from .conftest import compose_config


def test_synthetic_is_deterministic_and_shaped_like_cifar():
    cfg = compose_config(["data=synthetic"]).data
    a, b = load_data(cfg), load_data(cfg)
    assert a.train_images.shape == (2000, 3, 32, 32) and a.train_images.dtype == torch.uint8
    assert a.test_images.shape == (500, 3, 32, 32) and a.num_classes == 10
    assert torch.equal(a.train_images, b.train_images) and torch.equal(a.test_labels, b.test_labels)
    assert set(a.train_labels.tolist()) == set(range(10))


def test_train_subset_is_a_fixed_subset():
    cfg = compose_config(["data=synthetic", "data.train_subset=300"]).data
    a, b = load_data(cfg), load_data(cfg)
    assert len(a.train_labels) == 300 and torch.equal(a.train_images, b.train_images)
    assert len(a.test_labels) == 500  # the test set is never cut


def test_channel_stats_match_numpy():
    data = load_data(compose_config(["data=synthetic", "data.num_train=100"]).data)
    mean, std = data.channel_stats()
    x = data.train_images.numpy().astype(np.float64) / 255
    assert np.allclose(mean.numpy(), x.mean(axis=(0, 2, 3)), atol=1e-6)
    assert np.allclose(std.numpy(), x.std(axis=(0, 2, 3)), atol=1e-5)


def make_folder(root, classes=("cat", "dog"), per_class=3, size=8, test_classes=None):
    rng = np.random.default_rng(0)
    for split, names in (("train", classes), ("test", test_classes or classes)):
        for c in names:
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for k in range(per_class):
                pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / c / f"{k}.png")
    return root


def folder_cfg(root, tmp_path, *extra):
    return compose_config(["data=image_folder", f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}", *extra]).data


def test_image_folder_is_decoded_exactly_and_cached(tmp_path):
    root = make_folder(tmp_path / "set")
    data = load_data(folder_cfg(root, tmp_path))
    assert data.classes == ["cat", "dog"] and data.train_images.shape == (6, 3, 8, 8)
    first = np.asarray(Image.open(root / "train" / "cat" / "0.png")).transpose(2, 0, 1)
    assert np.array_equal(data.train_images[0].numpy(), first)  # PNG is lossless
    assert data.train_labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1
    again = load_data(folder_cfg(root, tmp_path))
    assert torch.equal(again.train_images, data.train_images)


def test_image_folder_cache_is_read_instead_of_decoding_again(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "set")
    first = load_data(folder_cfg(root, tmp_path))
    decoded = []
    real_decode = data_module._decode
    monkeypatch.setattr(data_module, "_decode", lambda *args: decoded.append(args) or real_decode(*args))
    again = load_data(folder_cfg(root, tmp_path))
    assert decoded == [] and torch.equal(again.train_images, first.train_images)
    (root / "train" / "cat" / "0.png").touch()  # a changed folder is decoded afresh
    os.utime(root / "train" / "cat" / "0.png", ns=(1, 1))
    load_data(folder_cfg(root, tmp_path))
    assert len(decoded) == 12


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    root = make_folder(tmp_path / "set", size=4)
    values = np.array([[0, 257, 25700, 32896], [50000, 65280, 65535, 1000]] * 2, dtype=np.uint16)
    Image.fromarray(values).save(root / "train" / "cat" / "0.png")
    assert Image.open(root / "train" / "cat" / "0.png").mode.startswith("I")
    data = load_data(folder_cfg(root, tmp_path))
    expected = np.round(values / 257).astype(np.uint8)  # 65535 -> 255, 257 -> 1
    for channel in data.train_images[0]:
        assert np.array_equal(channel.numpy(), expected)


def test_images_of_another_size_are_named_with_their_own_size(tmp_path):
    root = make_folder(tmp_path / "set", size=8)
    odd = root / "train" / "dog" / "1.png"
    Image.fromarray(np.zeros((12, 10, 3), dtype=np.uint8)).save(odd)  # 10 wide, 12 high
    with pytest.raises(DataError) as info:
        load_data(folder_cfg(root, tmp_path))
    assert str(info.value) == (f"images differ in size: {odd} is 10×12 but 5 of 6 are 8×8; "
                               "set data.image_size=N to resize them all to N×N")


def test_train_subset_larger_than_the_data_is_refused():
    cfg = compose_config(["data=synthetic", "data.num_train=100", "data.train_subset=150"]).data
    with pytest.raises(DataError) as info:
        load_data(cfg)
    assert str(info.value) == ("data.train_subset=150 is larger than the training set of synthetic (100 images); "
                               "use at most 100, or null for all")


def test_image_folder_resizes_when_asked(tmp_path):
    root = make_folder(tmp_path / "set", size=20)
    data = load_data(folder_cfg(root, tmp_path, "data.image_size=16"))
    assert data.train_images.shape[1:] == (3, 16, 16)


def test_image_folder_missing_root(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_data(folder_cfg(tmp_path / "nope", tmp_path))


def test_image_folder_without_test_split(tmp_path):
    root = make_folder(tmp_path / "set")
    for p in (root / "test").rglob("*.png"):
        p.unlink()
    for d in sorted((root / "test").iterdir()):
        d.rmdir()
    (root / "test").rmdir()
    with pytest.raises(DataError, match="no test/ folder"):
        load_data(folder_cfg(root, tmp_path))


def test_image_folder_with_different_classes(tmp_path):
    root = make_folder(tmp_path / "set", test_classes=("cat", "cow"))
    with pytest.raises(DataError, match="different classes"):
        load_data(folder_cfg(root, tmp_path))


def test_image_folder_names_a_corrupt_image(tmp_path):
    root = make_folder(tmp_path / "set")
    bad = root / "train" / "dog" / "1.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DataError, match=str(bad)):
        load_data(folder_cfg(root, tmp_path))


def test_cifar10_offline_says_what_to_do(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    def no_network(self):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(CIFAR10, "download", no_network)
    cfg = compose_config(["data=cifar10", f"data.root={tmp_path}"]).data
    with pytest.raises(DataError) as info:
        load_data(cfg)
    message = str(info.value)
    assert "could not be downloaded" in message and "data=image_folder" in message and "data=synthetic" in message


def test_svhn_offline_says_what_to_do(tmp_path, monkeypatch):
    from torchvision.datasets import SVHN

    def no_network(self):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(SVHN, "download", no_network)
    with pytest.raises(DataError, match="SVHN is not in .* could not be downloaded.*data=image_folder.*data=synthetic"):
        load_data(compose_config(["data=svhn", f"data.root={tmp_path}"]).data)


def test_missing_cifar10_without_download_says_what_to_do(tmp_path):
    with pytest.raises(DataError, match="CIFAR-10 is not in"):
        load_data(compose_config(["data=cifar10", f"data.root={tmp_path}", "data.download=false"]).data)


def _rows(images: torch.Tensor) -> set[bytes]:
    return {image.numpy().tobytes() for image in images}


def test_validation_split_is_held_out_of_training_and_fixed():
    small = ["data=synthetic", "data.num_train=600", "data.image_size=8"]
    full = load_data(compose_config(small).data)
    split = load_data(compose_config([*small, "data.val_size=150"]).data)
    assert len(split.val_labels) == 150 and len(split.train_labels) == 450 and not full.has_validation
    train, val = _rows(split.train_images), _rows(split.val_images)
    assert not train & val  # disjoint: no validation image is trained on
    assert train | val == _rows(full.train_images)  # together, the training set
    assert torch.equal(split.test_images, full.test_images)  # the test set is untouched
    # The same split whatever the run's seed or configuration: it depends on the data config alone.
    for overrides in (["seed=5", "augment=mixup"], ["seed=7", "augment=cutmix", "data.basic_augment=true"]):
        torch.manual_seed(int(overrides[0][5:]))
        other = load_data(compose_config([*small, "data.val_size=150", *overrides]).data)
        assert torch.equal(other.val_images, split.val_images) and torch.equal(other.val_labels, split.val_labels)


def test_train_subset_is_taken_from_what_validation_leaves():
    small = ["data=synthetic", "data.num_train=600", "data.image_size=8", "data.val_size=100"]
    split = load_data(compose_config(small).data)
    subset = load_data(compose_config([*small, "data.train_subset=200"]).data)
    assert torch.equal(subset.val_images, split.val_images) and len(subset.train_labels) == 200
    assert _rows(subset.train_images) <= _rows(split.train_images)


def test_validation_split_larger_than_the_training_set_says_what_to_do():
    with pytest.raises(DataError, match="data.val_size=600 leaves no training images"):
        load_data(compose_config(["data=synthetic", "data.num_train=600", "data.image_size=8",
                                  "data.val_size=600"]).data)
