"""CIFAR-10: the official python batches or class folders, and a procedural ten-class stand-in.

Real sources, in the order they are looked for under the data root:

- ``cifar-10-batches-py/`` (or ``CIFAR10/cifar-10-batches-py/``): the official python batches,
  read by torchvision's ``CIFAR10``, which also checks every file against its published MD5;
- ``CIFAR10/{train,test}/<class>/*.jpg|png``: class folders, a common re-distribution.

The stand-in draws one object per image (a plane on sky, a car on a road, a ship on water, ...)
with vectorised soft-edged shapes, so that a classifier and a DCGAN both have something to learn.
The drawing kit (``Frame``, ``paint``, ...) lives in ``draw.py``, shared with the BloodMNIST stand-in.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.datasets import CIFAR10
from torchvision.datasets.utils import check_integrity, extract_archive

from nbhelpers import settings
from nbhelpers.data.core import (
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
from nbhelpers.data.draw import Frame, col, paint, palette, smooth_noise, uniform

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
BATCHES = CIFAR10.base_folder  # "cifar-10-batches-py"
FOLDERS = "CIFAR10"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
# A fifth of the official split sizes: drawing costs ~0.5 ms an image, and `n` asks for more.
STANDIN_SIZES = {"train": 10_000, "test": 2_000}


def _find(root: Path) -> Path | None:
    for batches in (root / BATCHES, root / FOLDERS / BATCHES):
        if (batches / "batches.meta").is_file():
            return batches
    folders = root / FOLDERS
    if (folders / "train").is_dir() or (folders / "test").is_dir():
        return folders
    return None


def _download(root: Path) -> Path:
    """Fetch the official archive (torchvision's URL and MD5) and unpack it in one rename."""
    archive = download_file(CIFAR10.url, root / CIFAR10.filename, md5=CIFAR10.tgz_md5)
    # Unpack beside the target and rename, so an interrupted extraction never looks complete.
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".cifar-10-extract-"))
    try:
        extract_archive(archive, staging)
        os.replace(staging / BATCHES, root / BATCHES)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root / BATCHES


INFO = register(
    DatasetInfo(
        name="CIFAR-10",
        find=_find,
        instructions=(
            f"download {CIFAR10.url} (MD5 {CIFAR10.tgz_md5}) and extract it into the data root, "
            f"giving <data root>/{BATCHES}/data_batch_1..5, test_batch, batches.meta; or put class "
            f"folders at <data root>/{FOLDERS}/train/<class>/*.png and .../test/<class>/*.png "
            f"with the class names {', '.join(CLASSES)}"
        ),
        standin="procedural 32x32 colour images of ten object classes (shapes on textured scenes)",
        download=_download,
    )
)


# --- real readers -------------------------------------------------------------------------------


def read_batches(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The official python batches in ``folder`` as uint8 ``(N, 3, 32, 32)`` images and labels."""
    try:
        ds = CIFAR10(folder.parent, train=split == "train", download=False)
    except RuntimeError as err:  # torchvision's "not found or corrupted": find out which file
        official = (
            CIFAR10.train_list
            + CIFAR10.test_list
            + [[CIFAR10.meta["filename"], CIFAR10.meta["md5"]]]
        )
        bad = [
            str(folder / name) for name, md5 in official if not check_integrity(folder / name, md5)
        ]
        raise DataError(
            f"CIFAR-10: {', '.join(bad)} missing or not matching the official MD5.\n"
            f"Fix: delete {folder} and download {CIFAR10.url} again, or let the loader download it."
        ) from err
    if tuple(ds.classes) != CLASSES:
        raise DataError(
            f"CIFAR-10: {folder}/batches.meta names {ds.classes}, not the CIFAR-10 classes."
        )
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
    return images, torch.tensor(ds.targets, dtype=torch.int64)


def list_class_folders(split_dir: Path) -> tuple[list[Path], torch.Tensor]:
    """The image files of ``split_dir/<class>/*.jpg|png`` and their labels in the official order."""
    fix = f"Fix: {split_dir} must hold one folder per class, named {', '.join(CLASSES)}."
    if not split_dir.is_dir():
        raise DataError(f"CIFAR-10: {split_dir} does not exist.\n{fix}")
    folders = {p.name: p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")}
    if unknown := sorted(set(folders) - set(CLASSES)):
        raise DataError(f"CIFAR-10: unknown class folder(s) {unknown} in {split_dir}.\n{fix}")
    if missing := [c for c in CLASSES if c not in folders]:
        raise DataError(f"CIFAR-10: class folder(s) {missing} missing from {split_dir}.\n{fix}")
    files, labels = [], []
    for label, name in enumerate(CLASSES):
        found = sorted(f for f in folders[name].iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise DataError(
                f"CIFAR-10: class folder {folders[name]} holds no .jpg or .png images.\n{fix}"
            )
        files += found
        labels += [label] * len(found)
    return files, torch.tensor(labels)


def read_images(files: list[Path]) -> torch.Tensor:
    """32x32 image files as uint8 ``(N, 3, 32, 32)``; an unreadable one raises naming it."""
    return (
        torch.from_numpy(np.stack([_read_image(f) for f in files])).permute(0, 3, 1, 2).contiguous()
    )


def _read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            pixels = np.asarray(img.convert("RGB"))
    except OSError as err:  # PIL's UnidentifiedImageError and "truncated" are both OSErrors
        raise DataError(
            f"CIFAR-10: cannot read image {path} ({err}).\nFix: replace or delete it."
        ) from err
    if pixels.shape != (32, 32, 3):
        raise DataError(f"CIFAR-10: {path} is {pixels.shape[1]}x{pixels.shape[0]}, not 32x32.")
    return pixels


# --- the public loader --------------------------------------------------------------------------


def cifar10(
    split: str = "train",
    *,
    n: int | None = None,
    policy: str | None = None,
    root: str | Path | None = None,
    download: bool = True,
    seed: int | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> TensorImageDataset:
    """CIFAR-10 ``split`` ("train"/"test") as uint8 ``(N, 3, 32, 32)``, labels 0..9 in the official order."""
    if split not in STANDIN_SIZES:
        raise ValueError(f"CIFAR-10 has the splits 'train' and 'test', not {split!r}.")
    seed = settings.current().seed if seed is None else seed
    kind, folder = resolve(INFO, policy=policy, root=root, download=download)
    if kind == "standin":
        images, labels = standin(n or STANDIN_SIZES[split], seed=split_seed(seed, split))
        source = DataSource(
            INFO.name, "standin", "nbhelpers.data.cifar.standin", f"{split}, seed {seed}"
        )
    else:
        if folder.name == BATCHES:
            images, labels = read_batches(folder, split)
            layout, total = "official python batches", len(labels)
            if (keep := subset(total, n, seed)) is not None:
                images, labels = images[keep], labels[keep]
        else:  # pick the subset before decoding: JPEG decoding is the slow part
            files, labels = list_class_folders(folder / split)
            layout, total = "class folders", len(labels)
            if (keep := subset(total, n, seed)) is not None:
                files, labels = [files[i] for i in keep], labels[keep]
            images = read_images(files)
        source = DataSource(
            INFO.name, "real", settings.display_path(folder, root),
            f"{layout}, {split}: {len(labels)} of {total}",
        )
    return TensorImageDataset(images, labels, list(CLASSES), source, transform=transform)


# --- the CIFAR-10 stand-in ----------------------------------------------------------------------

SIZE = 32
# Palettes (RGB in [0, 1]) that each image picks one colour from, plus a little jitter.
SKY = [(0.35, 0.55, 0.85), (0.5, 0.68, 0.9), (0.62, 0.74, 0.86)]
GRASS = [(0.3, 0.55, 0.2), (0.45, 0.6, 0.25), (0.35, 0.45, 0.2)]
ROAD = [(0.45, 0.45, 0.47), (0.35, 0.35, 0.37), (0.55, 0.53, 0.5)]
STREET = [(0.6, 0.55, 0.5), (0.5, 0.6, 0.7), (0.3, 0.45, 0.3)]  # behind cars and trucks
FOLIAGE = [(0.25, 0.4, 0.2), (0.45, 0.4, 0.25)]
PAINTWORK = [
    (0.85, 0.1, 0.1),
    (0.1, 0.25, 0.8),
    (0.95, 0.8, 0.1),
    (0.92, 0.92, 0.92),
    (0.1, 0.1, 0.12),
]
AIRCRAFT = [(0.92, 0.92, 0.94), (0.7, 0.72, 0.76), (0.45, 0.47, 0.52), (0.85, 0.25, 0.2)]
PLUMAGE = [
    (0.75, 0.15, 0.1),
    (0.15, 0.3, 0.75),
    (0.9, 0.8, 0.15),
    (0.5, 0.35, 0.2),
    (0.15, 0.15, 0.15),
]
FUR = [(0.85, 0.5, 0.15), (0.5, 0.5, 0.5), (0.12, 0.1, 0.1), (0.92, 0.9, 0.85), (0.5, 0.35, 0.2)]
HORSE = [
    (0.35, 0.2, 0.1),
    (0.55, 0.3, 0.15),
    (0.1, 0.08, 0.07),
    (0.85, 0.85, 0.82),
    (0.5, 0.5, 0.52),
]
DEER = [(0.62, 0.42, 0.22), (0.55, 0.38, 0.2), (0.7, 0.52, 0.3)]
FROG = [(0.35, 0.7, 0.2), (0.5, 0.55, 0.2), (0.55, 0.45, 0.25), (0.2, 0.8, 0.3)]
WATER = [(0.1, 0.3, 0.55), (0.15, 0.4, 0.6), (0.1, 0.25, 0.4)]
HULL = [(0.15, 0.15, 0.18), (0.75, 0.15, 0.1), (0.9, 0.9, 0.9), (0.2, 0.25, 0.4)]
BLACK, WHITE, GLASS = (
    torch.tensor([0.03, 0.03, 0.03]),
    torch.tensor([0.95, 0.95, 0.95]),
    torch.tensor([0.28, 0.32, 0.42]),
)


def _scene(g, n: int, top, bottom, horizon, blur: float, grain: float) -> torch.Tensor:
    """A backdrop blending colour ``top`` into ``bottom`` at ``horizon``, with a mottled texture."""
    mix = torch.sigmoid((Frame(SIZE).v - col(horizon)) / blur).unsqueeze(1)
    img = top.view(-1, 3, 1, 1) * (1 - mix) + bottom.view(-1, 3, 1, 1) * mix
    texture = 0.6 * smooth_noise(g, n, SIZE, 6) + 0.4 * smooth_noise(g, n, SIZE, 16)
    return img * (1 + grain * (texture - 0.5))


def _pose(g, n: int, cv=(-0.12, 0.12), scale=(0.8, 1.1), tilt=0.12) -> Frame:
    """A random object frame: position, size, a small tilt and a left/right mirror."""
    flip = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    cu, tilt = uniform(g, n, -0.12, 0.12), uniform(g, n, -tilt, tilt)
    return Frame(SIZE, uniform(g, n, *cv), cu, uniform(g, n, *scale), tilt, flip)


def _either(g, n: int, p: float, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per image, colour ``a`` with probability ``p``, else ``b``."""
    return torch.where((torch.rand(n, generator=g) < p).view(-1, 1), a, b)


def _wheels(img: torch.Tensor, f: Frame, cv: float, cus: Sequence[float], r: float) -> None:
    for cu in cus:
        paint(img, f.ellipse(cv, cu, r, r), BLACK)
        paint(img, f.ellipse(cv, cu, 0.4 * r, 0.4 * r), torch.tensor([0.6, 0.6, 0.62]))


def _airplane(g, n):
    sky = palette(g, n, SKY)
    img = _scene(g, n, sky * 0.85, sky * 0.5 + 0.5, 0.3, 0.8, 0.15)
    clouds = ((smooth_noise(g, n, SIZE, 4)[:, 0] - 0.55) * 4).clamp(0, 1)
    paint(img, clouds, WHITE, 0.7)
    f = _pose(g, n, scale=(0.75, 1.1), tilt=0.7)  # planes fly at any heading
    hull = palette(g, n, AIRCRAFT)
    paint(img, f.ellipse(0, 0.05, 0.7, 0.12, angle=0.25), hull * 0.85)  # wings, swept back
    paint(img, f.box(0, -0.62, 0.26, 0.06), hull * 0.85)  # tailplane
    paint(img, f.ellipse(0, 0, 0.1, 0.75), hull)  # fuselage
    return img


def _automobile(g, n):
    img = _scene(g, n, palette(g, n, STREET), palette(g, n, ROAD), uniform(g, n, 0, 0.3), 0.05, 0.3)
    f = _pose(g, n, cv=(0.0, 0.2), tilt=0.05)
    body = palette(g, n, PAINTWORK)
    paint(img, f.polygon([(-0.12, -0.45), (-0.12, 0.35), (-0.4, 0.18), (-0.4, -0.32)]), body)
    paint(img, f.polygon([(-0.15, -0.38), (-0.15, 0.3), (-0.34, 0.15), (-0.34, -0.27)]), GLASS)
    paint(img, f.box(0.05, 0, 0.17, 0.75), body)
    paint(img, f.box(0.0, 0.7, 0.04, 0.05), torch.tensor([1.0, 0.9, 0.5]))  # headlight
    _wheels(img, f, 0.22, (-0.45, 0.45), 0.17)
    return img


def _bird(g, n):
    top = _either(g, n, 0.5, palette(g, n, SKY), palette(g, n, FOLIAGE))
    img = _scene(g, n, top, top * 0.8 + 0.1, 0.0, 0.6, 0.5)
    f = _pose(g, n, scale=(0.75, 1.05), tilt=0.3)
    plumage = palette(g, n, PLUMAGE)
    tail = f.polygon([(-0.08, -0.3), (0.08, -0.3), (0.22, -0.85), (-0.05, -0.85)])
    paint(img, tail, plumage * 0.6)
    paint(img, f.ellipse(0.05, -0.05, 0.26, 0.42, angle=0.2), plumage)
    paint(img, f.ellipse(-0.02, -0.12, 0.15, 0.3, angle=0.35), plumage * 0.6)  # wing
    paint(img, f.ellipse(-0.25, 0.38, 0.19, 0.19), plumage)  # head
    beak = f.polygon([(-0.32, 0.52), (-0.18, 0.52), (-0.26, 0.78)])
    paint(img, beak, torch.tensor([0.95, 0.6, 0.1]))
    paint(img, f.ellipse(-0.29, 0.43, 0.045, 0.045), BLACK)
    for cu in (-0.05, 0.1):
        paint(img, f.box(0.38, cu, 0.1, 0.02), torch.tensor([0.3, 0.25, 0.2]))
    return img


def _cat(g, n):
    wall = palette(g, n, [(0.8, 0.7, 0.55), (0.6, 0.45, 0.35), (0.7, 0.7, 0.72)])
    img = _scene(g, n, wall, wall * 0.7, uniform(g, n, 0.2, 0.7), 0.05, 0.4)
    f = _pose(g, n, scale=(0.8, 1.1), tilt=0.15)
    fur = palette(g, n, FUR)
    for s in (-1, 1):  # upright pointed ears, pink inside
        paint(img, f.polygon([(-0.2, -0.52 * s), (-0.85, -0.45 * s), (-0.4, -0.08 * s)]), fur)
        inner = f.polygon([(-0.3, -0.45 * s), (-0.72, -0.42 * s), (-0.42, -0.2 * s)])
        paint(img, inner, torch.tensor([0.9, 0.6, 0.6]))
    head = f.ellipse(0.05, 0, 0.48, 0.58)
    paint(img, head, fur)
    tabby = (torch.rand(n, generator=g) < 0.5).float().view(-1, 1, 1)
    stripes = (torch.sin(f.u * 14 + f.v * 3) > 0.5).float() * (f.v < -0.05) * head * tabby
    paint(img, stripes, fur * 0.55)
    iris = palette(g, n, [(0.5, 0.8, 0.2), (0.9, 0.75, 0.1)])
    for s in (-1, 1):
        paint(img, f.ellipse(-0.05, 0.22 * s, 0.11, 0.1), iris)
        paint(img, f.ellipse(-0.05, 0.22 * s, 0.09, 0.025), BLACK)  # slit pupils
    paint(
        img, f.polygon([(0.12, -0.07), (0.12, 0.07), (0.22, 0.0)]), torch.tensor([0.9, 0.5, 0.55])
    )
    return img


def _deer(g, n):
    img = _scene(g, n, palette(g, n, FOLIAGE), palette(g, n, GRASS), 0.45, 0.1, 0.5)
    trunks = ((smooth_noise(g, n, SIZE, 8)[:, 0].mean(1, keepdim=True) - 0.5) * 8).clamp(0, 1)
    paint(
        img,
        trunks.expand(-1, SIZE, -1) * (Frame(SIZE).v < 0.45),
        torch.tensor([0.22, 0.16, 0.1]),
        0.8,
    )
    f = _pose(g, n, scale=(0.7, 0.95), tilt=0.08)
    coat = palette(g, n, DEER, 0.04)
    for cu in (-0.35, -0.25, 0.25, 0.35):
        paint(img, f.box(0.42, cu, 0.3, 0.035), coat * 0.8)
    paint(img, f.ellipse(0, 0, 0.2, 0.42), coat)
    paint(img, f.ellipse(0.12, 0, 0.07, 0.28), torch.tensor([0.9, 0.85, 0.75]))  # pale belly
    paint(img, f.box(-0.25, 0.38, 0.25, 0.07, angle=0.45), coat)  # neck
    paint(img, f.ellipse(-0.48, 0.52, 0.1, 0.16, angle=0.3), coat)
    antlers = (torch.rand(n, generator=g) < 0.7).float().view(-1, 1, 1)
    tines = [
        f.box(-0.72, 0.44, 0.18, 0.035, angle=-0.35),
        f.box(-0.72, 0.6, 0.18, 0.035, angle=0.35),
        f.box(-0.8, 0.52, 0.035, 0.14),
    ]
    paint(img, torch.stack(tines).amax(0) * antlers, torch.tensor([0.35, 0.25, 0.15]))
    return img


def _dog(g, n):
    top = _either(
        g, n, 0.6, palette(g, n, SKY), palette(g, n, [(0.8, 0.75, 0.65), (0.55, 0.5, 0.45)])
    )
    img = _scene(g, n, top, palette(g, n, GRASS), uniform(g, n, 0.0, 0.4), 0.05, 0.4)
    f = _pose(g, n, scale=(0.8, 1.1), tilt=0.15)
    fur = palette(g, n, FUR)
    paint(img, f.ellipse(0.0, 0, 0.5, 0.44), fur)
    for s in (-1, 1):  # floppy ears hang beside the head, unlike a cat's upright ones
        paint(img, f.ellipse(0.05, 0.46 * s, 0.42, 0.15, angle=-0.25 * s), fur * 0.55)
        paint(img, f.ellipse(-0.12, 0.2 * s, 0.07, 0.07), BLACK)
    muzzle = palette(g, n, [(0.85, 0.75, 0.6), (0.95, 0.93, 0.9)])
    paint(img, f.ellipse(0.28, 0, 0.22, 0.28), muzzle)
    paint(img, f.ellipse(0.18, 0, 0.08, 0.12), BLACK)  # nose
    return img


def _frog(g, n):
    ground = palette(g, n, [(0.25, 0.3, 0.15), (0.35, 0.28, 0.18), (0.2, 0.35, 0.3)])
    img = _scene(g, n, ground, ground * 0.7, 0.0, 0.8, 0.8)
    f = _pose(g, n, scale=(0.8, 1.1), tilt=0.2)
    skin = palette(g, n, FROG)
    for s in (-1, 1):  # folded hind legs
        paint(img, f.ellipse(0.28, 0.5 * s, 0.14, 0.3, angle=0.5 * s), skin * 0.8)
    body = f.ellipse(0.05, 0, 0.36, 0.56)
    paint(img, body, skin)
    paint(img, ((smooth_noise(g, n, SIZE, 10)[:, 0] - 0.6) * 6).clamp(0, 1) * body, skin * 0.5)
    paint(img, f.ellipse(0.28, 0, 0.12, 0.3), torch.tensor([0.9, 0.88, 0.6]))  # pale throat
    for s in (-1, 1):  # bulging eyes on top of the head
        paint(img, f.ellipse(-0.3, 0.28 * s, 0.15, 0.15), skin)
        paint(img, f.ellipse(-0.32, 0.28 * s, 0.09, 0.09), torch.tensor([0.85, 0.7, 0.2]))
        paint(img, f.ellipse(-0.32, 0.28 * s, 0.05, 0.05), BLACK)
    return img


def _horse(g, n):
    img = _scene(
        g, n, palette(g, n, SKY), palette(g, n, GRASS), uniform(g, n, -0.2, 0.1), 0.04, 0.35
    )
    f = _pose(g, n, scale=(0.8, 1.0), tilt=0.06)
    coat = palette(g, n, HORSE)
    paint(img, f.ellipse(0.1, -0.62, 0.28, 0.06, angle=0.3), coat * 0.4)  # tail
    for cu in (-0.42, -0.3, 0.3, 0.42):  # longer legs and a bigger body than the deer's
        paint(img, f.box(0.48, cu, 0.34, 0.045), coat * 0.85)
    paint(img, f.ellipse(0, 0, 0.24, 0.52), coat)
    paint(img, f.box(-0.3, 0.45, 0.3, 0.1, angle=0.6), coat)  # neck
    paint(img, f.box(-0.33, 0.36, 0.3, 0.035, angle=0.6), coat * 0.4)  # mane
    paint(img, f.ellipse(-0.5, 0.68, 0.1, 0.22, angle=0.9), coat)
    return img


def _ship(g, n):
    horizon = uniform(g, n, -0.05, 0.2)
    img = _scene(g, n, palette(g, n, SKY), palette(g, n, WATER), horizon, 0.03, 0.3)
    v = Frame(SIZE).v
    ripples = (torch.sin(v * 40 + 3 * smooth_noise(g, n, SIZE, 6)[:, 0]) > 0.6).float()
    paint(img, ripples * (v > col(horizon)), torch.tensor([0.7, 0.8, 0.9]), 0.3)
    flip = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    f = Frame(SIZE, horizon, uniform(g, n, -0.1, 0.1), uniform(g, n, 0.8, 1.1), 0.0, flip)  # afloat
    paint(img, f.box(-0.3, -0.2, 0.14, 0.32), WHITE)  # superstructure
    paint(img, f.box(-0.5, -0.25, 0.08, 0.15), torch.tensor([0.85, 0.87, 0.9]))
    funnel = palette(g, n, [(0.8, 0.2, 0.1), (0.2, 0.2, 0.2), (0.9, 0.7, 0.1)])
    paint(img, f.box(-0.45, 0.22, 0.16, 0.06), funnel)
    hull = f.polygon([(-0.16, -0.8), (-0.16, 0.92), (0.12, 0.62), (0.12, -0.7)])
    paint(img, hull, palette(g, n, HULL))
    return img


def _truck(g, n):
    img = _scene(
        g, n, palette(g, n, STREET), palette(g, n, ROAD), uniform(g, n, 0.1, 0.4), 0.05, 0.3
    )
    f = _pose(g, n, cv=(-0.05, 0.15), scale=(0.85, 1.05), tilt=0.04)
    paint(img, f.box(0.3, 0, 0.05, 0.78), torch.tensor([0.15, 0.15, 0.15]))  # chassis
    paint(img, f.box(-0.15, -0.22, 0.42, 0.55), palette(g, n, PAINTWORK))  # cargo box
    paint(img, f.box(0.02, 0.55, 0.27, 0.2), palette(g, n, PAINTWORK))  # cab
    paint(img, f.box(-0.1, 0.6, 0.1, 0.12), GLASS)
    _wheels(img, f, 0.36, (-0.58, -0.25, 0.55), 0.15)
    return img


DRAW = (_airplane, _automobile, _bird, _cat, _deer, _dog, _frog, _horse, _ship, _truck)
CHUNK = 1024  # images drawn at once: bounds memory, and fixes the random stream for a given n


def standin(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` procedural CIFAR-like images, uint8 ``(n, 3, 32, 32)``, with balanced labels 0..9."""
    g = torch.Generator().manual_seed(seed)
    labels = (torch.arange(n) % len(CLASSES))[torch.randperm(n, generator=g)]
    images = torch.empty(n, 3, SIZE, SIZE, dtype=torch.uint8)
    for label, draw in enumerate(DRAW):
        for chunk in torch.nonzero(labels == label).flatten().split(CHUNK):
            img = draw(g, len(chunk))
            img = img + 0.02 * torch.randn(img.shape, generator=g)  # sensor grain
            images[chunk] = (img.clamp(0, 1) * 255).round().to(torch.uint8)
    return images, labels
