"""Decoded image-folder caches: one per folder (a superseded one is removed), and `python -m mixupexp.cache`."""

from __future__ import annotations

import logging

import numpy as np
from PIL import Image

from mixupexp import cache
from mixupexp.data.datasets import load_data
from tests.test_data import folder_cfg, make_folder


def test_a_changed_folder_replaces_its_cache_and_leaves_other_folders_alone(tmp_path):
    first, second = make_folder(tmp_path / "first"), make_folder(tmp_path / "second")
    load_data(folder_cfg(first, tmp_path))
    load_data(folder_cfg(second, tmp_path))
    before = {e.folder: e.path for e in cache.list_caches(tmp_path / "cache")}
    assert set(before) == {str(first.resolve()), str(second.resolve())}
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(first / "train" / "cat" / "new.png")
    data = load_data(folder_cfg(first, tmp_path))
    assert len(data.train_labels) == 7
    after = {e.folder: e.path for e in cache.list_caches(tmp_path / "cache")}
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 2
    assert after[str(second.resolve())] == before[str(second.resolve())]
    assert after[str(first.resolve())] != before[str(first.resolve())] and not before[str(first.resolve())].exists()


def test_the_cache_file_is_named_once_when_written_and_when_read(tmp_path, caplog):
    root = make_folder(tmp_path / "set")
    with caplog.at_level(logging.INFO, logger="mixupexp"):
        load_data(folder_cfg(root, tmp_path))
    (entry,) = cache.list_caches(tmp_path / "cache")
    written = [r.getMessage() for r in caplog.records if str(entry.path) in r.getMessage()]
    assert len(written) == 1 and "cached in" in written[0]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="mixupexp"):
        load_data(folder_cfg(root, tmp_path))
    read = [r.getMessage() for r in caplog.records]
    assert read == [f"decoded images of {root} read from the cache {entry.path}"]


def test_cache_command_lists_and_clears(tmp_path, capsys):
    root = make_folder(tmp_path / "set")
    load_data(folder_cfg(root, tmp_path, "data.image_size=4"))
    cache.main(["--cache-dir", str(tmp_path / "cache")])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(str(tmp_path / "cache" / "image_folder-")) and lines[0].endswith(
        f"MB  {root.resolve()}, image_size 4")
    assert lines[1].startswith("1 caches, ")
    cache.main(["--cache-dir", str(tmp_path / "cache"), "--clear"])
    assert capsys.readouterr().out.startswith("removed 1 cache files")
    assert list((tmp_path / "cache").iterdir()) == []
    cache.main(["--cache-dir", str(tmp_path / "cache")])
    assert capsys.readouterr().out.strip() == f"no caches in {tmp_path / 'cache'}"


def test_cache_clear_can_take_one_folder_and_leave_the_others(tmp_path, capsys):
    first, second = make_folder(tmp_path / "first"), make_folder(tmp_path / "second")
    load_data(folder_cfg(first, tmp_path))
    load_data(folder_cfg(second, tmp_path))
    cache.main(["--cache-dir", str(tmp_path / "cache"), "--clear", "--folder", str(first)])
    assert capsys.readouterr().out.startswith(f"removed 1 cache files of {first}")
    assert [e.folder for e in cache.list_caches(tmp_path / "cache")] == [str(second.resolve())]
