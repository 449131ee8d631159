"""BloodMNIST: the official MedMNIST ``.npz`` files through the medmnist package, and a drawn stand-in.

medmnist names its files by size: ``bloodmnist.npz`` holds the 28x28 images and
``bloodmnist_<size>.npz`` the 64, 128 and 224 ones, each with ``{train,val,test}_images``
``(N, size, size, 3)`` uint8 and ``{train,val,test}_labels`` ``(N, 1)``. The loader looks for
them under ``<data root>/MedMNIST`` and downloads them from medmnist's own URLs and MD5s.

The stand-in draws a blood smear: pale red cells on a cream background around one white cell
whose size, cytoplasm and nucleus (shape, stain, granules) follow the class, as in the real images.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import medmnist
import torch

from nbhelpers import settings
from nbhelpers.data.core import (
    NPZ_ERRORS,
    DataError,
    DatasetInfo,
    DataSource,
    TensorImageDataset,
    download_file,
    register,
    resolve,
    split_seed,
    subset,
)
from nbhelpers.data.draw import Frame, paint, palette, smooth_noise, uniform

FLAG = "bloodmnist"
META = medmnist.INFO[FLAG]
CLASSES = [META["label"][str(i)] for i in range(len(META["label"]))]
SIZES = tuple(medmnist.BloodMNIST.available_sizes)  # 28, 64, 128, 224
SPLITS = ("train", "val", "test")
FOLDER = "MedMNIST"
# A quarter of the official split sizes (11,959 / 1,712 / 3,421): a 64x64 image takes ~1.5 ms.
STANDIN_SIZES = {"train": 3_000, "val": 428, "test": 855}


def npz_name(size: int) -> str:
    """medmnist's file name for ``size``: no suffix for 28x28, ``_<size>`` otherwise."""
    return f"{FLAG}.npz" if size == 28 else f"{FLAG}_{size}.npz"


def _info(size: int) -> DatasetInfo:
    """The registry entry for the ``size``-pixel file: each size is its own download."""
    suffix = "" if size == 28 else f"_{size}"
    name, url, md5 = npz_name(size), META[f"url{suffix}"], META[f"MD5{suffix}"]

    def find(root: Path) -> Path | None:
        return root / FOLDER if (root / FOLDER / name).is_file() else None

    def download(root: Path) -> Path:
        download_file(url, root / FOLDER / name, md5=md5)
        return root / FOLDER

    return DatasetInfo(
        name=f"BloodMNIST {size}x{size}",
        find=find,
        instructions=(
            f"download {url} (MD5 {md5}) and put it at <data root>/{FOLDER}/{name} "
            f"(the {size}x{size} file; other sizes are used only when `size` asks for them)"
        ),
        standin=f"procedural {size}x{size} blood-smear images of the 8 BloodMNIST cell classes",
        download=download,
    )


# The series uses two of MedMNIST's sizes: 64x64 (the write-up's) and 28x28 (the smallest file).
INFO = register(_info(64))
register(_info(28))


def read_npz(folder: Path, split: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of ``folder/bloodmnist[_size].npz`` via medmnist, as uint8 ``(N, 3, size, size)`` and labels."""
    path = folder / npz_name(size)
    fix = f"Fix: delete {path} and download it again: {_info(size).instructions}."
    try:
        ds = medmnist.BloodMNIST(split=split, size=size, root=str(folder), download=False)
        images, labels = ds.imgs, ds.labels
    except NPZ_ERRORS as err:
        raise DataError(
            f"BloodMNIST: cannot read {split} from {path} ({type(err).__name__}: {err}).\n{fix}"
        ) from err
    if (
        images.shape[1:] != (size, size, 3)
        or images.dtype.name != "uint8"
        or labels.shape != (len(images), 1)
    ):
        raise DataError(
            f"BloodMNIST: {path} holds {split}_images {images.shape} {images.dtype} and {split}_labels "
            f"{labels.shape}, not (N, {size}, {size}, 3) uint8 and (N, 1).\n{fix}"
        )
    if len(labels) and not 0 <= labels.min() <= labels.max() < len(CLASSES):
        raise DataError(
            f"BloodMNIST: {path} has {split} labels outside 0..{len(CLASSES) - 1}.\n{fix}"
        )
    images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    return images, torch.from_numpy(labels[:, 0].astype("int64"))


def blood_mnist(
    split: str = "train",
    *,
    size: int = 64,
    n: int | None = None,
    policy: str | None = None,
    root: str | Path | None = None,
    download: bool = True,
    seed: int | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> TensorImageDataset:
    """BloodMNIST ``split`` ("train"/"val"/"test") as uint8 ``(N, 3, size, size)``, labels 0..7."""
    if split not in SPLITS:
        raise ValueError(f"BloodMNIST has the splits {SPLITS}, not {split!r}.")
    if size not in SIZES:
        raise ValueError(f"BloodMNIST comes in the sizes {SIZES}, not {size}.")
    seed = settings.current().seed if seed is None else seed
    info = _info(size)
    kind, folder = resolve(info, policy=policy, root=root, download=download)
    if kind == "standin":
        images, labels = standin(n or STANDIN_SIZES[split], size, seed=split_seed(seed, split))
        source = DataSource(
            info.name, "standin", "nbhelpers.data.blood.standin", f"{split}, {size}px, seed {seed}"
        )
    else:
        images, labels = read_npz(folder, split, size)
        total = len(labels)
        if (keep := subset(total, n, seed)) is not None:
            images, labels = images[keep], labels[keep]
        source = DataSource(
            info.name, "real", settings.display_path(folder / npz_name(size), root),
            f"{split}: {len(labels)} of {total}",
        )
    return TensorImageDataset(images, labels, list(CLASSES), source, transform=transform)


# --- the stand-in -------------------------------------------------------------------------------

NUCLEUS = [(0.32, 0.16, 0.48), (0.38, 0.22, 0.55), (0.25, 0.12, 0.38)]  # haematoxylin purples
RED_CELLS = 10  # at most this many red cells per image


def _smear(g: torch.Generator, n: int, size: int) -> torch.Tensor:
    """Cream background with scattered pale red cells, each with a lighter centre."""
    paper = palette(g, n, [(0.95, 0.86, 0.78), (0.93, 0.82, 0.8), (0.9, 0.85, 0.86)], 0.02)
    img = paper.view(n, 3, 1, 1) * (1 + 0.04 * (smooth_noise(g, n, size, 5) - 0.5)).expand(
        n, 3, size, size
    )
    frame = Frame(size)
    # Red cells are the costliest part of the image: gather every cell's rim and pale centre into
    # two masks and paint each once, rather than painting cell by cell.
    rims, centres = torch.zeros(n, size, size), torch.zeros(n, size, size)
    for _ in range(RED_CELLS):
        present = (torch.rand(n, generator=g) < 0.8).float().view(-1, 1, 1)
        cv, cu, r = uniform(g, n, -1.1, 1.1), uniform(g, n, -1.1, 1.1), uniform(g, n, 0.26, 0.36)
        dist = torch.hypot(frame.u - cu.view(-1, 1, 1), frame.v - cv.view(-1, 1, 1))
        rims = torch.maximum(rims, frame.soft(dist - r.view(-1, 1, 1)) * present)
        centres = torch.maximum(centres, frame.soft(dist - 0.45 * r.view(-1, 1, 1)) * present)
    rim = palette(g, n, [(0.86, 0.64, 0.66), (0.82, 0.66, 0.72)], 0.03)
    paint(img, rims, rim)
    paint(img, centres, rim * 0.5 + 0.5, 0.4)
    return img


def _granules(g: torch.Generator, n: int, size: int, cells: int, level: float) -> torch.Tensor:
    """A speckle mask: value noise with ``cells`` blobs across the image, above ``level``."""
    return ((smooth_noise(g, n, size, cells)[:, 0] - level) * 8).clamp(0, 1)


def _lobes(
    f: Frame, g: torch.Generator, n: int, count: torch.Tensor, radius: float
) -> torch.Tensor:
    """Up to five round lobes along a C-shaped arc; the first ``count`` of them are drawn."""
    lobes = []
    for j in range(5):
        angle = -1.6 + 0.8 * j + uniform(g, n, -0.15, 0.15)
        lobe = f.ellipse(
            0.26 * torch.sin(angle), 0.26 * torch.cos(angle), radius, radius * 1.15, angle
        )
        lobes.append(lobe * (j < count).float().view(-1, 1, 1))
    return torch.stack(lobes).amax(0)


# Short names for the classes, in label order, and each white cell's radius and cytoplasm colour.
KINDS = (
    "basophil",
    "eosinophil",
    "erythroblast",
    "immature granulocyte",
    "lymphocyte",
    "monocyte",
    "neutrophil",
    "platelet",
)
CELLS = {
    "basophil": (0.48, (0.78, 0.7, 0.84)),
    "eosinophil": (0.55, (0.93, 0.6, 0.48)),  # orange-pink
    "erythroblast": (0.34, (0.78, 0.7, 0.84)),
    "immature granulocyte": (0.6, (0.78, 0.7, 0.84)),  # the largest
    "lymphocyte": (0.38, (0.66, 0.66, 0.88)),  # a thin rim of blue cytoplasm
    "monocyte": (0.62, (0.76, 0.72, 0.86)),  # grey-blue
    "neutrophil": (0.52, (0.87, 0.74, 0.82)),  # pale pink-lilac
}


def _cell(g: torch.Generator, label: int, img: torch.Tensor, size: int) -> None:
    """Draw the central cell of class ``label`` (a BloodMNIST class index) onto ``img``."""
    n, kind = len(img), KINDS[label]
    shift, scale, turn = (
        uniform(g, 2 * n, -0.08, 0.08),
        uniform(g, n, 0.88, 1.12),
        uniform(g, n, 0, 2 * math.pi),
    )
    f = Frame(size, shift[:n], shift[n:], scale, turn)
    purple = palette(g, n, NUCLEUS, 0.04)
    if kind == "platelet":  # no white cell: one to three small purple fragments among the red cells
        for chance in (1.0, 0.6, 0.3):
            present = (torch.rand(n, generator=g) < chance).float().view(-1, 1, 1)
            cv, cu, r = (
                uniform(g, n, -0.3, 0.3),
                uniform(g, n, -0.3, 0.3),
                uniform(g, n, 0.06, 0.11),
            )
            paint(img, f.ellipse(cv, cu, r, r * 1.3, uniform(g, n, 0, 3)) * present, purple * 1.4)
        return
    radius, cytoplasm = CELLS[kind]
    body = f.ellipse(0, 0, radius, radius * uniform(g, n, 0.92, 1.08))
    paint(img, body, palette(g, n, [cytoplasm], 0.03))
    if kind == "basophil":  # nucleus hidden under coarse dark granules
        paint(img, f.ellipse(0, 0, 0.36, 0.4), purple)
        paint(img, _granules(g, n, size, 14, 0.45) * body, purple * 0.55)
    elif kind == "eosinophil":  # two lobes among bright orange granules
        paint(img, _granules(g, n, size, 20, 0.5) * body, torch.tensor([0.85, 0.38, 0.25]), 0.8)
        for side in (-1, 1):
            paint(img, f.ellipse(0, 0.2 * side, 0.17, 0.15), purple)
        paint(img, f.box(0, 0, 0.03, 0.15), purple)
    elif kind == "erythroblast":  # small cell, round and very dense nucleus
        paint(img, f.ellipse(0, 0.04, 0.24, 0.24), purple * 0.6)
    elif kind == "lymphocyte":  # a round nucleus filling most of the cell
        paint(img, f.ellipse(0, 0.05, 0.32, 0.31), purple * 0.8)
    elif kind == "monocyte":  # kidney-shaped nucleus, vacuoles in the cytoplasm
        paint(img, _granules(g, n, size, 12, 0.7) * body, torch.tensor([0.92, 0.9, 0.95]), 0.7)
        kidney = f.ellipse(0, 0, 0.34, 0.42) * (1 - f.ellipse(-0.32, 0, 0.22, 0.24))
        paint(img, kidney, purple * 1.2)
    elif kind == "neutrophil":  # three to five lobes joined in a chain
        paint(img, _lobes(f, g, n, torch.randint(3, 6, (n,), generator=g), 0.12), purple * 0.75)
    else:  # immature granulocyte: a large oval nucleus with mottled chromatin, off centre
        nucleus = f.ellipse(0.05, 0.1, 0.33, 0.42)
        paint(img, nucleus, purple * 1.25)
        paint(img, _granules(g, n, size, 16, 0.55) * nucleus, purple * 0.8)


CHUNK = 512  # images drawn at once: bounds memory, and fixes the random stream for a given n


def standin(n: int, size: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` procedural blood-smear images, uint8 ``(n, 3, size, size)``, with balanced labels 0..7."""
    g = torch.Generator().manual_seed(seed)
    labels = (torch.arange(n) % len(CLASSES))[torch.randperm(n, generator=g)]
    images = torch.empty(n, 3, size, size, dtype=torch.uint8)
    for label in range(len(CLASSES)):
        for chunk in torch.nonzero(labels == label).flatten().split(CHUNK):
            img = _smear(g, len(chunk), size)
            _cell(g, label, img, size)
            img = img + 0.015 * torch.randn(img.shape, generator=g)
            images[chunk] = (img.clamp(0, 1) * 255).round().to(torch.uint8)
    return images, labels
