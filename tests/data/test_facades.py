"""CMP Facades: the pix2pix pair files, direction, jitter, the download's unpacking, errors and the stand-in."""

import importlib
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nbhelpers.data.core import DataError
from nbhelpers.data.facades import (
    CMP_COLOURS,
    WINDOW,
    PairedImages,
    facades,
    random_jitter,
    render_facades,
)

# The module itself, whatever the package namespace binds to the name "facades" (the loader
# function shares it), for monkeypatching its download.
facades_module = importlib.import_module("nbhelpers.data.facades")
PHOTO, LABEL = (200, 40, 40), (40, 40, 200)  # red photo half, blue label half


def write_pair(path: Path, index: int, side: int = 256) -> None:
    """A pix2pix pair file as in facades.tar.gz: 512x256 JPEG, photo on the left, label map on the
    right; a bright bar ``16 * index`` px wide at the top left of both halves tells the files apart."""
    a = np.zeros((side, 2 * side, 3), np.uint8)
    a[:, :side], a[:, side:] = PHOTO, LABEL
    a[:side // 4, :16 * index] = a[:side // 4, side:side + 16 * index] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path, quality=95)


def write_facades(root: Path, counts=None) -> Path:
    """``<root>/facades/{train,test}/<k>.jpg`` for k = 1..count, like the shared copy (no val)."""
    for split, count in (counts or {"train": 11, "test": 3}).items():
        for k in range(1, count + 1):
            write_pair(root / "facades" / split / f"{k}.jpg", k)
    return root


def test_halves_direction_order_and_range(tmp_path):
    root = write_facades(tmp_path / "data")
    ds = facades("train", size=16, root=root, policy="real", jitter=False)
    assert ds.source.kind == "real" and len(ds) == 11 and ds.inputs.shape == (11, 3, 16, 16)
    # Numeric order, 1, 2, ..., 10, 11, not 1, 10, 11, 2, ...
    assert [Path(f).name for f in ds.files] == [f"{k}.jpg" for k in range(1, 12)]
    x, y = ds[0]
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    # label2photo: the input is the right (blue) half, the target the left (red) half.
    body = (slice(None), slice(10, None), slice(None))  # below the marker bar
    assert x[body][2].mean() > 0.3 > x[body][0].mean() and y[body][0].mean() > 0.3 > y[body][2].mean()
    back = facades("train", size=16, root=root, policy="real", jitter=False, direction="photo2label")
    assert torch.equal(back.inputs, ds.targets) and torch.equal(back.targets, ds.inputs)


def test_subset_is_seeded_and_inside_the_split(tmp_path):
    root = write_facades(tmp_path / "data")
    a = facades("train", size=16, root=root, policy="real", n=4, seed=1)
    assert len(a) == 4 and a.files == facades("train", size=16, root=root, policy="real", n=4, seed=1).files
    assert set(a.files) <= set(facades("train", size=16, root=root, policy="real").files)
    # each kept pair is the file it names: the marker bar's width is the file number
    k = int(Path(a.files[0]).stem)
    marker = (a.targets[0, 2, 1] > 128).sum().item()  # blue: low in the red photo, high in the bar
    assert abs(marker - k) <= 1  # 256 px -> 16 px: the 16k-px bar becomes k px


def test_jitter_keeps_the_pair_aligned_and_stays_in_range():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    ds = PairedImages(images, images.clone(), source=None, files=["a", "b", "c", "d"], jitter=True)
    crops = [ds[i % 4] for i in range(16)]
    assert all(torch.equal(x, y) for x, y in crops)  # same crop and flip for both halves
    assert all(x.shape == (3, 32, 32) and x.min() >= -1 and x.max() <= 1 for x, _ in crops)
    plain = images[0].float() / 127.5 - 1
    assert any(not torch.equal(ds[0][0], plain) for _ in range(5))
    # The upscale is 286/256, so a crop sees at most 32 * 256/286 < 29 source pixels across.
    pair = torch.arange(32.0).repeat(6, 32, 1)
    assert random_jitter(pair).unique().numel() < 30


def test_train_jitters_by_default_test_does_not(tmp_path):
    root = write_facades(tmp_path / "data")
    assert facades("train", size=16, root=root, policy="real").jitter
    assert not facades("test", size=16, root=root, policy="real").jitter


# --- errors ------------------------------------------------------------------------------------

def test_missing_val_split_says_what_exists(tmp_path):
    root = write_facades(tmp_path / "data")
    with pytest.raises(DataError, match=r"no 'val' split here \(found: train, test\)"):
        facades("val", size=16, root=root, policy="real")


def test_wrong_size_pair_is_named(tmp_path):
    root = write_facades(tmp_path / "data")
    Image.fromarray(np.zeros((32, 40, 3), np.uint8)).save(root / "facades" / "test" / "2.jpg")
    with pytest.raises(DataError, match=r"2\.jpg: 40x32 pixels.*512x256"):
        facades("test", size=16, root=root, policy="real")


def test_corrupt_jpeg_is_named(tmp_path):
    root = write_facades(tmp_path / "data")
    bad = root / "facades" / "test" / "3.jpg"
    bad.write_bytes(bad.read_bytes()[:120])
    with pytest.raises(DataError, match=re.escape(str(bad))):
        facades("test", size=16, root=root, policy="real")


def test_empty_split_folder_is_named(tmp_path):
    root = write_facades(tmp_path / "data")
    (root / "facades" / "val").mkdir()
    with pytest.raises(DataError, match=re.escape(str(root / "facades" / "val"))):
        facades("val", size=16, root=root, policy="real")


# --- fallback order and the download -------------------------------------------------------------

def test_fallback_order(tmp_path, monkeypatch):
    root = write_facades(tmp_path / "data")
    assert facades("test", size=16, root=root, policy="auto").source.kind == "real"
    assert facades("test", size=16, root=root, policy="standin", n=2).source.kind == "standin"

    def offline(url, dest, md5=None, timeout=15.0):
        raise DataError(f"could not reach {url}: offline")

    monkeypatch.setattr(facades_module, "download_file", offline)
    empty = tmp_path / "nothing"
    empty.mkdir()
    assert facades("test", size=16, root=empty, policy="auto", download=False, n=2).source.kind == "standin"
    assert facades("test", size=16, root=empty, policy="auto", n=2).source.kind == "standin"
    with pytest.raises(DataError, match=re.escape(facades_module.URL)):
        facades("test", size=16, root=empty, policy="real")


def _fake_download(archive_source: Path):
    def download(url, dest, md5=None, timeout=15.0):
        dest.write_bytes(archive_source.read_bytes())
        return dest
    return download


def _small_archive(tmp_path: Path) -> Path:
    built = write_facades(tmp_path / "build", {"train": 2, "val": 1, "test": 1})
    archive = tmp_path / "facades.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(built / "facades", arcname="facades")
    return archive


def test_download_unpacks_into_place(tmp_path, monkeypatch):
    monkeypatch.setattr(facades_module, "download_file", _fake_download(_small_archive(tmp_path)))
    monkeypatch.setattr(facades_module, "OFFICIAL_COUNTS", {"train": 2, "test": 1})
    root = tmp_path / "data"
    root.mkdir()
    ds = facades("val", size=16, root=root, policy="real")
    assert ds.source.kind == "real" and len(ds) == 1
    assert sorted(p.name for p in root.iterdir()) == ["facades"]  # no archive, no temp folder left


def test_incomplete_download_is_deleted(tmp_path, monkeypatch):
    monkeypatch.setattr(facades_module, "download_file", _fake_download(_small_archive(tmp_path)))
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(DataError, match="not the official"):  # 2 + 1 pairs, not 400 + 106
        facades("test", size=16, root=root, policy="real")
    assert list(root.iterdir()) == []


def test_broken_download_is_deleted_and_leaves_no_folder(tmp_path, monkeypatch):
    archive = tmp_path / "broken.tar.gz"
    archive.write_bytes(b"\x1f\x8b not really gzip")
    monkeypatch.setattr(facades_module, "download_file", _fake_download(archive))
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(DataError, match="cannot be unpacked"):
        facades("test", size=16, root=root, policy="real")
    assert list(root.iterdir()) == []


# --- the stand-in ------------------------------------------------------------------------------

def test_standin_pairs_are_deterministic_and_facade_like():
    ds = facades("test", size=64, policy="standin", seed=0, n=6)
    assert ds.source.kind == "standin" and ds.inputs.shape == ds.targets.shape == (6, 3, 64, 64)
    assert ds.inputs.dtype == torch.uint8 and not ds.jitter
    again = facades("test", size=64, policy="standin", seed=0, n=6)
    assert torch.equal(again.inputs, ds.inputs) and torch.equal(again.targets, ds.targets)
    assert not torch.equal(facades("test", size=64, policy="standin", seed=1, n=6).inputs, ds.inputs)
    # The label maps use only the CMP colours, and every facade has windows.
    colours = ds.inputs.permute(0, 2, 3, 1).reshape(-1, 3)
    palette = torch.from_numpy(CMP_COLOURS)
    assert (colours[:, None] == palette[None]).all(-1).any(-1).all()
    for label in ds.inputs:
        assert (label.permute(1, 2, 0) == palette[WINDOW]).all(-1).float().mean() > 0.02
    # Glass is darker than the wall in the photo, as in daylight (the median skips the frames).
    windows = (ds.inputs.permute(0, 2, 3, 1) == palette[WINDOW]).all(-1)
    wall = (ds.inputs.permute(0, 2, 3, 1) == palette[1]).all(-1)
    brightness = ds.targets.float().mean(1)
    assert brightness[windows].median() < brightness[wall].median() - 40


def test_standin_pair_does_not_depend_on_the_subset():
    photos, labels = render_facades("train", [3, 7], 32, seed=2)
    alone_photo, alone_label = render_facades("train", [7], 32, seed=2)
    assert np.array_equal(photos[1], alone_photo[0]) and np.array_equal(labels[1], alone_label[0])
