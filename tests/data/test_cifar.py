"""CIFAR-10: both real layouts from fixture files, the fallback order, the errors, and the stand-in."""

import pickle
import struct
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets import CIFAR10

from nbhelpers.data import cifar
from nbhelpers.data.core import DataError, md5sum

PER_BATCH = 4  # images per fixture batch (the official batches hold 10,000)


class Py2Pickler(pickle._Pickler):
    """Pickles the way Python 2's cPickle wrote the official batches (protocol 2): every string a
    byte string (opcodes U/T, so Python 3 needs ``encoding="latin1"`` or ``"bytes"`` to read them)
    and numpy's reconstructor under its 1.x module name, ``numpy.core.multiarray``."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_string(self, obj: str | bytes) -> None:
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        size = len(raw)
        opcode = (pickle.SHORT_BINSTRING + bytes([size]) if size < 256
                  else pickle.BINSTRING + struct.pack("<i", size))
        self.write(opcode + raw)
        self.memoize(obj)

    dispatch[str] = dispatch[bytes] = save_py2_string

    def save_global(self, obj, name=None) -> None:
        module = obj.__module__.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)


def py2_pickle(path, obj) -> None:
    with open(path, "wb") as f:
        Py2Pickler(f, protocol=2).dump(obj)


def write_batches(root, rng):
    """A tiny ``cifar-10-batches-py`` in the official format: per batch a dict of ``batch_label``
    ("training batch 1 of 5"), ``labels`` (ints 0-9), ``data`` (uint8 rows of 1024 R, 1024 G,
    1024 B) and ``filenames``; ``batches.meta`` with ``label_names``. Returns {file: (data, labels)}."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    written = {}
    names = [n for n, _ in CIFAR10.train_list + CIFAR10.test_list]
    for name in names:
        data = rng.integers(0, 256, (PER_BATCH, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, PER_BATCH).tolist()
        label = ("testing batch 1 of 1" if name == "test_batch"
                 else f"training batch {name.rsplit('_', 1)[1]} of 5")
        files = [f"{cifar.CLASSES[y]}_s_{i:06d}.png" for i, y in enumerate(labels)]
        py2_pickle(folder / name, {"batch_label": label, "labels": labels, "data": data, "filenames": files})
        written[name] = (data, labels)
    py2_pickle(folder / "batches.meta",
               {"label_names": list(cifar.CLASSES), "num_cases_per_batch": PER_BATCH, "num_vis": 3072})
    (folder / "readme.html").write_text("<meta HTTP-EQUIV=\"REFRESH\" content=\"0; url=http://www.cs.toronto.edu/~kriz/cifar.html\">\n")
    return folder, written


def test_fixture_batches_unpickle_like_the_official_ones(tmp_path):
    """Python 3's default ASCII decoding fails on them, and the CIFAR page's own snippet
    (``encoding="bytes"``) gives byte-string keys: the marks of Python 2 pickles."""
    folder, written = write_batches(tmp_path, np.random.default_rng(0))
    with open(folder / "data_batch_2", "rb") as f:
        raw = f.read()
    with pytest.raises(UnicodeDecodeError):
        pickle.loads(raw)
    entry = pickle.loads(raw, encoding="bytes")
    assert sorted(entry) == [b"batch_label", b"data", b"filenames", b"labels"]
    assert entry[b"batch_label"] == b"training batch 2 of 5"
    assert entry[b"data"].dtype == np.uint8 and entry[b"data"].shape == (PER_BATCH, 3072)
    assert np.array_equal(entry[b"data"], written["data_batch_2"][0])


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


def write_class_folders(split_dir, per_class=2, suffix=".png"):
    """Class folders of 32x32 images named 0000.png, 0001.png, ... (PNG is lossless, so pixels
    round-trip; JPEG re-distributions such as the shared copy exist too); returns the pixels in
    label order."""
    rng = np.random.default_rng(2)
    pixels = []
    for name in cifar.CLASSES:
        (split_dir / name).mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(img).save(split_dir / name / f"{i:04d}{suffix}")
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
    write_class_folders(tmp_path / "CIFAR10" / "test", per_class=1, suffix=".jpg")
    real = cifar.cifar10("test", root=tmp_path, policy="auto", download=False)
    assert real.source.kind == "real" and real.images.shape == (10, 3, 32, 32)
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
