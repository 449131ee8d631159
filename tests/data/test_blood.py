"""BloodMNIST: the official npz files through medmnist, the fallback order, the errors, the stand-in."""

import medmnist
import numpy as np
import pytest
import torch

from nbhelpers.data import blood
from nbhelpers.data.core import DataError

OFFICIAL_COUNTS = {"train": 11_959, "val": 1_712, "test": 3_421}


def write_npz(root, size=28, counts=None, seed=0, drop=()):
    """A BloodMNIST npz with the official keys: ``{split}_images`` (N, s, s, 3), ``{split}_labels`` (N, 1)."""
    rng = np.random.default_rng(seed)
    counts = counts or {"train": 6, "val": 3, "test": 4}
    arrays = {}
    for split, n in counts.items():
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 8, (n, 1), dtype=np.uint8)
    path = root / "MedMNIST" / blood.npz_name(size)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: v for k, v in arrays.items() if k not in drop})
    return path, arrays


def test_official_npz_read_exactly(tmp_path):
    _, arrays = write_npz(tmp_path)
    ds = blood.blood_mnist("val", size=28, root=tmp_path, policy="real", download=False)
    assert ds.images.shape == (3, 3, 28, 28) and ds.images.dtype == torch.uint8
    assert torch.equal(ds.images, torch.from_numpy(arrays["val_images"]).permute(0, 3, 1, 2))
    assert ds.labels.tolist() == arrays["val_labels"][:, 0].tolist()
    assert ds.classes == [medmnist.INFO["bloodmnist"]["label"][str(i)] for i in range(8)]
    assert ds.source.kind == "real" and ds.source.location.endswith("bloodmnist.npz")


def test_64px_file_with_official_shape_loads_through_medmnist(tmp_path):
    """A stand-in for the real ``bloodmnist_64.npz``: random arrays of the official shapes and counts."""
    write_npz(tmp_path, size=64, counts=OFFICIAL_COUNTS)
    for split, count in OFFICIAL_COUNTS.items():
        ds = blood.blood_mnist(
            split, root=tmp_path, policy="real", download=False
        )  # size=64 is the default
        assert ds.images.shape == (count, 3, 64, 64)
    # medmnist's own length check compares with its recorded official counts.
    assert len(medmnist.BloodMNIST(split="val", size=64, root=str(tmp_path / "MedMNIST"))) == 1_712
    subset = blood.blood_mnist("train", n=100, seed=0, root=tmp_path, policy="real", download=False)
    assert len(subset) == 100 and "100 of 11959" in subset.source.note
    # Only the 64x64 file is there, so asking for 28x28 must not silently use it.
    with pytest.raises(DataError, match="bloodmnist.npz"):
        blood.blood_mnist("train", size=28, root=tmp_path, policy="real", download=False)


def test_corrupt_or_incomplete_npz_is_named(tmp_path):
    path, _ = write_npz(tmp_path)
    path.write_bytes(path.read_bytes()[:200])  # truncated, as by an interrupted copy
    with pytest.raises(DataError, match="bloodmnist.npz"):
        blood.blood_mnist("train", size=28, root=tmp_path, policy="real", download=False)
    write_npz(tmp_path, drop=("test_images",))
    blood.blood_mnist(
        "train", size=28, root=tmp_path, policy="real", download=False
    )  # other splits fine
    with pytest.raises(DataError, match="bloodmnist.npz"):
        blood.blood_mnist("test", size=28, root=tmp_path, policy="real", download=False)


def test_wrong_image_size_in_file_is_refused(tmp_path):
    path, _ = write_npz(tmp_path, size=28)
    path.rename(path.with_name("bloodmnist_64.npz"))  # a 28x28 file under the 64x64 name
    with pytest.raises(DataError, match=r"not \(N, 64, 64, 3\)"):
        blood.blood_mnist("train", size=64, root=tmp_path, policy="real", download=False)


def test_fallback_order(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(blood, "download_file", pytest.fail)  # download=False must not try
    ds = blood.blood_mnist("train", size=28, n=16, root=tmp_path, policy="auto", download=False)
    assert ds.source.kind == "standin" and "STAND-IN DATA for BloodMNIST" in capsys.readouterr().out
    with pytest.raises(DataError, match="zenodo.org.*bloodmnist.npz"):
        blood.blood_mnist("train", size=28, root=tmp_path, policy="real", download=False)
    write_npz(tmp_path)
    assert (
        blood.blood_mnist(
            "train", size=28, root=tmp_path, policy="auto", download=False
        ).source.kind
        == "real"
    )
    assert (
        blood.blood_mnist("train", size=28, n=16, root=tmp_path, policy="standin").source.kind
        == "standin"
    )


def test_offline_download_falls_back(tmp_path, monkeypatch):
    def offline(url, dest, md5):
        raise DataError(f"could not reach {url}")

    monkeypatch.setattr(blood, "download_file", offline)
    assert (
        blood.blood_mnist("val", size=28, n=8, root=tmp_path, policy="auto").source.kind
        == "standin"
    )
    with pytest.raises(DataError, match="download failed"):
        blood.blood_mnist("val", size=28, root=tmp_path, policy="real")


@pytest.mark.parametrize("size", [28, 64])
def test_standin_shapes_ranges_and_determinism(size):
    a = blood.blood_mnist("train", size=size, n=80, seed=5, policy="standin")
    b = blood.blood_mnist("train", size=size, n=80, seed=5, policy="standin")
    assert a.images.shape == (80, 3, size, size) and a.images.dtype == torch.uint8
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert torch.bincount(a.labels, minlength=8).tolist() == [10] * 8
    assert a.classes == blood.CLASSES and len(a.classes) == 8
    assert all(full.startswith(short) for short, full in zip(blood.KINDS, a.classes, strict=True))
    assert a.images.min() < 60 and a.images.max() > 200  # dark nuclei on a pale smear
    other = blood.blood_mnist("train", size=size, n=80, seed=6, policy="standin")
    assert not torch.equal(a.images, other.images)


def test_standin_classes_differ():
    """Classes must be told apart: nearest class mean on 28x28 pixels beats chance (12.5%) by far."""
    train_x, train_y = blood.standin(400, 28, seed=0)
    test_x, test_y = blood.standin(200, 28, seed=1)
    means = torch.stack([train_x[train_y == c].float().flatten(1).mean(0) for c in range(8)])
    predicted = torch.cdist(test_x.float().flatten(1), means).argmin(1)
    assert (predicted == test_y).float().mean() > 0.4
