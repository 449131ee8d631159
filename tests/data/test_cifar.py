"""CIFAR-10: both real layouts from fixture files, the fallback order, the errors, and the stand-in."""

import pickle
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets import CIFAR10

from nbhelpers.data import cifar
from nbhelpers.data.core import DataError, md5sum

PER_BATCH = 4  # images per fixture batch


def write_batches(root, rng):
    """A tiny ``cifar-10-batches-py`` in the official pickle format; returns {file: (data, labels)}."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    written = {}
    for name in [n for n, _ in CIFAR10.train_list + CIFAR10.test_list]:
        data = rng.integers(
            0, 256, (PER_BATCH, 3072), dtype=np.uint8
        )  # rows: 1024 R, 1024 G, 1024 B
        labels = rng.integers(0, 10, PER_BATCH).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels, "data": data, "filenames": []}, f)
        written[name] = (data, labels)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(
            {"label_names": list(cifar.CLASSES), "num_cases_per_batch": PER_BATCH, "num_vis": 3072},
            f,
        )
    return folder, written


@pytest.fixture
def batches(tmp_path, monkeypatch):
    """Fixture batches, with torchvision's official MD5s replaced by the fixture files' own."""
    folder, written = write_batches(tmp_path, np.random.default_rng(0))
    for attr in ("train_list", "test_list"):
        sums = [[name, md5sum(folder / name)] for name, _ in getattr(CIFAR10, attr)]
        monkeypatch.setattr(CIFAR10, attr, sums)
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5sum(folder / "batches.meta")})
    return tmp_path, folder, written


def test_official_batches_read_exactly(batches):
    root, _, written = batches
    ds = cifar.cifar10("test", root=root, policy="real", download=False)
    data, labels = written["test_batch"]
    assert ds.images.shape == (PER_BATCH, 3, 32, 32) and ds.images.dtype == torch.uint8
    assert torch.equal(ds.images.reshape(PER_BATCH, -1), torch.from_numpy(data))
    assert ds.labels.tolist() == labels
    assert ds.source.kind == "real" and "official python batches" in ds.source.note
    train = cifar.cifar10("train", root=root, policy="real", download=False)
    assert len(train) == 5 * PER_BATCH


def test_corrupt_batch_is_named(batches):
    root, folder, _ = batches
    (folder / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="data_batch_3"):
        cifar.cifar10("train", root=root, policy="real", download=False)


def test_real_subset_is_seeded(batches):
    root, _, _ = batches
    a = cifar.cifar10("train", n=7, seed=1, root=root, policy="real", download=False)
    b = cifar.cifar10("train", n=7, seed=1, root=root, policy="real", download=False)
    assert len(a) == 7 and torch.equal(a.images, b.images)
    assert "7 of 20" in a.source.note


def test_download_extracts_in_one_rename(tmp_path, monkeypatch):
    """The downloaded archive is unpacked to cifar-10-batches-py and no staging folder is left."""
    src, _ = write_batches(tmp_path / "src", np.random.default_rng(1))
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname="cifar-10-batches-py")
    root = tmp_path / "root"
    root.mkdir()
    monkeypatch.setattr(cifar, "download_file", lambda url, dest, md5: archive)
    assert cifar._download(root) == root / "cifar-10-batches-py"
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-batches-py"]
    assert (root / "cifar-10-batches-py" / "test_batch").is_file()


def write_class_folders(split_dir, per_class=2):
    """PNG class folders (lossless, so pixels round-trip); returns the pixels in label order."""
    rng = np.random.default_rng(2)
    pixels = []
    for name in cifar.CLASSES:
        (split_dir / name).mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(img).save(split_dir / name / f"{i:04d}.png")
            pixels.append(img)
    return np.stack(pixels)


def test_class_folders_in_official_label_order(tmp_path):
    pixels = write_class_folders(tmp_path / "CIFAR10" / "train")
    ds = cifar.cifar10("train", root=tmp_path, policy="real", download=False)
    assert ds.labels.tolist() == [c for c in range(10) for _ in range(2)]
    assert torch.equal(ds.images, torch.from_numpy(pixels).permute(0, 3, 1, 2))
    assert ds.classes == list(cifar.CLASSES) and "class folders" in ds.source.note


def test_class_folder_errors_name_the_problem(tmp_path):
    split_dir = tmp_path / "CIFAR10" / "train"
    write_class_folders(split_dir)
    (split_dir / "cat" / "0001.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match="0001.png"):
        cifar.cifar10("train", root=tmp_path, policy="real", download=False)
    for f in (split_dir / "cat").iterdir():
        f.unlink()
    with pytest.raises(DataError, match="cat holds no"):
        cifar.cifar10("train", root=tmp_path, policy="real", download=False)
    (split_dir / "cat").rmdir()
    (split_dir / "kitten").mkdir()
    with pytest.raises(DataError, match="unknown class folder.*kitten"):
        cifar.cifar10("train", root=tmp_path, policy="real", download=False)
    with pytest.raises(DataError, match="test does not exist"):
        cifar.cifar10("test", root=tmp_path, policy="real", download=False)


def test_fallback_order(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cifar, "download_file", pytest.fail)  # download=False must not try
    ds = cifar.cifar10("test", n=20, root=tmp_path, policy="auto", download=False)
    assert ds.source.kind == "standin" and "STAND-IN DATA for CIFAR-10" in capsys.readouterr().out
    with pytest.raises(DataError, match="cifar-10-python.tar.gz"):
        cifar.cifar10("test", root=tmp_path, policy="real", download=False)
    write_class_folders(tmp_path / "CIFAR10" / "test", per_class=1)
    assert cifar.cifar10("test", root=tmp_path, policy="auto", download=False).source.kind == "real"
    assert cifar.cifar10("test", n=20, root=tmp_path, policy="standin").source.kind == "standin"


def test_offline_download_falls_back(tmp_path, monkeypatch):
    def offline(url, dest, md5):
        raise DataError(f"could not reach {url}")

    monkeypatch.setattr(cifar, "download_file", offline)
    assert cifar.cifar10("test", n=10, root=tmp_path, policy="auto").source.kind == "standin"
    with pytest.raises(DataError, match="download failed"):
        cifar.cifar10("test", root=tmp_path, policy="real")


def test_standin_shapes_and_determinism():
    a = cifar.cifar10("train", n=200, seed=3, policy="standin")
    b = cifar.cifar10("train", n=200, seed=3, policy="standin")
    c = cifar.cifar10("test", n=200, seed=3, policy="standin")
    assert a.images.shape == (200, 3, 32, 32) and a.images.dtype == torch.uint8
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images)  # train and test draw from different streams
    assert torch.bincount(a.labels, minlength=10).tolist() == [20] * 10
    assert a.images.min() < 20 and a.images.max() > 235  # uses the whole 0..255 range
    x, y = a[0]
    assert x.dtype == torch.float32 and x.min() >= 0 and x.max() <= 1 and 0 <= int(y) < 10


def test_standin_classes_are_separable():
    """A nearest-class-mean classifier on raw pixels must beat chance (10%) by far."""
    train_x, train_y = cifar.standin(1000, seed=0)
    test_x, test_y = cifar.standin(500, seed=1)
    means = torch.stack([train_x[train_y == c].float().flatten(1).mean(0) for c in range(10)])
    predicted = torch.cdist(test_x.float().flatten(1), means).argmin(1)
    assert (predicted == test_y).float().mean() > 0.5
