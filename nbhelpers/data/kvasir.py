"""Kvasir endoscopy images for anomaly detection: normal mucosa as the training class, polyps as anomalies.

Two official layouts are read, with their class names mapped onto one spelling (HyperKvasir's):

- HyperKvasir: ``<root>/HyperKvasir/labeled-images/<tract>/<category>/<class>/*.jpg``
  (``cecum``, ``z-line``, ``pylorus``, ``polyps``, ``bbps-2-3``, ...) with polyp masks under
  ``<root>/HyperKvasir/segmented-images/masks/<same name>.jpg``;
- Kvasir v2: ``<root>/kvasir-dataset-v2/<class>/*.jpg`` (``normal-cecum`` -> ``cecum``,
  ``normal-z-line`` -> ``z-line``, ``normal-pylorus`` -> ``pylorus``, ``polyps``, ...).

Kvasir-SEG masks (``<root>/Kvasir-SEG/masks/<name>.jpg``) are used for any polyp image of the
same file name. Images are centre-cropped to a square on the short side and resized; the decoded
arrays are cached as ``.npz`` under ``<cache dir>/kvasir`` so that a second load takes a moment.

Offline, a procedural stand-in draws endoscopy-like frames (mucosa texture, folds around a dark
lumen, vessels, specular highlights, vignetting) and, for the anomalies, polyp-like domes of
varied size and contrast together with their masks.
"""

from __future__ import annotations

import hashlib
import math
import os
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms import v2

from nbhelpers import settings
from nbhelpers.data.core import (
    DataError,
    DatasetInfo,
    DataSource,
    TensorImageDataset,
    cached_arrays,
    register,
    resolve,
)

SPLITS = ("train", "val", "test")
TEST_FRACTION = 0.2  # of each normal class: write-up 001 trains on 80% of the normals
VAL_FRACTION = 0.15  # of the remaining 80%: early stopping and the detection threshold
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
# Kvasir v2 prefixes its normal landmarks with "normal-"; HyperKvasir does not.
KVASIR_V2_NAMES = {"normal-cecum": "cecum", "normal-z-line": "z-line", "normal-pylorus": "pylorus"}
CACHE_VERSION = 1  # bump when the preprocessing changes, so that old caches are not reused
STANDIN_PER_NORMAL_CLASS = 400  # about the shared HyperKvasir subset's cecum / bbps-2-3 counts
STANDIN_ANOMALIES = 1000  # its polyp count
# HyperKvasir's lower-GI frames carry a black scope-guide box in the lower-left corner: in the
# shared subset it is in 96-100% of cecum / bbps-2-3 frames but only ~half of the polyp frames,
# a shortcut an anomaly detector will happily learn. After the centre crop it covers rows from
# 0.67 and columns up to 0.31 of the side; these bounds add a pixel's margin.
OVERLAY_TOP, OVERLAY_RIGHT = 0.66, 0.32

INSTRUCTIONS = (
    "get HyperKvasir's labelled images (and its segmented images, for polyp masks) from "
    "https://datasets.simula.no/hyper-kvasir/ and unpack them into <data root>/HyperKvasir/, so "
    "that <data root>/HyperKvasir/labeled-images/lower-gi-tract/pathological-findings/polyps/*.jpg "
    "and <data root>/HyperKvasir/segmented-images/masks/*.jpg exist; or get Kvasir v2 from "
    "https://datasets.simula.no/kvasir/ and unpack it into <data root>/, so that "
    "<data root>/kvasir-dataset-v2/polyps/*.jpg exists"
)
NO_DOWNLOAD = "There is no automatic download: the archives are several GB and served from web pages, so "
INFO = register(DatasetInfo(
    name="Kvasir",
    find=lambda root: next((layout.folder for layout in find_layouts(root)), None),
    instructions=NO_DOWNLOAD + INSTRUCTIONS,
    standin="procedural endoscopy-like frames; polyp-like domes (with masks) as the anomalies",
))


# --- the real layouts ----------------------------------------------------------------------------

def canonical(name: str) -> str:
    """A class name in HyperKvasir's spelling: Kvasir v2's ``normal-cecum`` becomes ``cecum``."""
    name = name.strip().lower()
    return KVASIR_V2_NAMES.get(name, name)


@dataclass(frozen=True)
class Layout:
    """One HyperKvasir or Kvasir v2 tree: its folder and its class folders by canonical name."""

    kind: str
    folder: Path
    classes: dict[str, Path]

    def describe(self) -> str:
        """The layout, where it is, and its classes with their image counts."""
        counts = ", ".join(f"{c} ({len(image_files(d))})" for c, d in sorted(self.classes.items()))
        return f"{self.kind} layout at {self.folder}: {counts}"


def image_files(folder: Path) -> list[Path]:
    """The image files in ``folder``, sorted by name so that splits do not depend on the filesystem."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def find_layouts(root: str | Path) -> list[Layout]:
    """Every HyperKvasir or Kvasir v2 tree under ``root`` that has class folders, HyperKvasir first."""
    root = Path(root)
    layouts = []
    for base in (root / "HyperKvasir", root / "hyper-kvasir", root):
        labeled = base / "labeled-images"
        if labeled.is_dir():  # <tract>/<category>/<class>
            classes = {canonical(d.name): d for d in sorted(labeled.glob("*/*/*")) if d.is_dir()}
            layouts.append(Layout("HyperKvasir", base, classes))
    for base in (root, root / "Kvasir"):
        v2_folder = base / "kvasir-dataset-v2"
        if v2_folder.is_dir():
            classes = {canonical(d.name): d for d in sorted(v2_folder.iterdir()) if d.is_dir()}
            layouts.append(Layout("Kvasir v2", v2_folder, classes))
    return [layout for layout in layouts if layout.classes]


def choose_layout(root: Path, wanted: Sequence[str]) -> Layout:
    """The first layout holding every wanted class; otherwise a DataError listing what exists."""
    layouts = find_layouts(root)
    for layout in layouts:
        if all(c in layout.classes for c in wanted):
            return layout
    found = "\n".join(f"  {layout.describe()}" for layout in layouts) or f"  nothing under {root}"
    missing = sorted({c for c in wanted if not any(c in lay.classes for lay in layouts)})
    raise DataError(
        f"Kvasir: class(es) {', '.join(missing or wanted)} not found together in one layout. "
        f"Found:\n{found}\nFix: choose normal_classes / anomaly_classes from the classes above "
        f"(either spelling: 'normal-cecum' or 'cecum'), or add the missing class folders: {INSTRUCTIONS}."
    )


def mask_index(root: Path, layout: Layout) -> dict[str, Path]:
    """Polyp masks by file stem: HyperKvasir's segmented images, then Kvasir-SEG."""
    folders = [layout.folder / "segmented-images" / "masks", root / "HyperKvasir" / "segmented-images" / "masks",
               root / "Kvasir-SEG" / "masks"]
    index: dict[str, Path] = {}
    for folder in folders:
        if folder.is_dir():
            for path in image_files(folder):
                index.setdefault(path.stem, path)
    return index


def load_square(path: Path, size: int, mode: str) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode an image, centre-crop it to a square on the short side and resize it to ``size``.

    Returns the ``(size, size[, 3])`` uint8 array and the image's size on disk.
    """
    try:
        with Image.open(path) as im:
            full_size = im.size
            im.draft(mode, (size, size))  # JPEG: decode at 1/2, 1/4... scale, still >= size: 2x faster
            im = im.convert(mode)
            w, h = im.size
            side = min(w, h)
            box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
            return np.asarray(im.resize((size, size), Image.Resampling.BILINEAR, box=box)), full_size
    except (OSError, SyntaxError, ValueError) as err:  # truncated, corrupt or not an image at all
        raise DataError(
            f"{path}: cannot be decoded as an image ({err}). Fix: delete the file or replace it "
            "with an intact copy from the official archive."
        ) from err


@dataclass
class ClassImages:
    """One class folder decoded: images, masks (zeros where none), mask and image file paths."""

    images: np.ndarray  # (N, 3, size, size) uint8
    masks: np.ndarray  # (N, 1, size, size) uint8 in {0, 1}
    mask_files: list[str]  # "" where the image has no mask
    files: list[str]


def _fingerprint(paths: Iterable[Path]) -> str:
    """A hash of names, sizes and modification times: any change to the files invalidates a cache."""
    digest = hashlib.sha1(f"v{CACHE_VERSION}".encode())
    for p in paths:
        st = p.stat()
        digest.update(f"{os.path.abspath(p)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def class_files(name: str, folder: Path) -> list[Path]:
    """A requested class's images; an empty folder is an error, not an empty class."""
    files = image_files(folder)
    if not files:
        raise DataError(
            f"{folder}: the class folder '{name}' holds no .jpg/.png images. Fix: unpack the "
            "official archive again, or leave this class out of normal_classes / anomaly_classes."
        )
    return files


def read_class(name: str, folder: Path, size: int, masks: dict[str, Path]) -> ClassImages:
    """Decode one class folder (and its masks) at ``size``, through the ``.npz`` cache."""
    files = class_files(name, folder)
    mask_paths = [masks.get(p.stem) for p in files]
    key = _fingerprint([*files, *(m for m in mask_paths if m is not None)])
    cache = settings.current().cache_dir / "kvasir" / f"{name}-{size}px-{key}.npz"

    def decode() -> dict[str, np.ndarray]:
        images = np.empty((len(files), 3, size, size), np.uint8)
        mask_array = np.zeros((len(files), 1, size, size), np.uint8)
        for i, (path, mask_path) in enumerate(zip(files, mask_paths, strict=True)):
            rgb, full_size = load_square(path, size, "RGB")
            images[i] = rgb.transpose(2, 0, 1)
            if mask_path is not None:
                grey, mask_size = load_square(mask_path, size, "L")
                if mask_size != full_size:
                    raise DataError(
                        f"{mask_path}: the mask is {mask_size[0]}x{mask_size[1]} but its image {path} "
                        f"is {full_size[0]}x{full_size[1]}, so they cannot be aligned. Fix: use the "
                        "masks from the same archive as the images."
                    )
                mask_array[i, 0] = grey >= 128  # masks are JPEGs: grey fringes around 0 and 255
        return {"images": images, "masks": mask_array,
                "mask_files": np.array([str(m or "") for m in mask_paths]),
                "files": np.array([str(p) for p in files])}

    z = cached_arrays(cache, decode)
    return ClassImages(z["images"], z["masks"], z["mask_files"].tolist(), z["files"].tolist())


# --- splits -------------------------------------------------------------------------------------

def _rng(seed: int, key: str) -> np.random.Generator:
    """A generator for one named stream, so that each class's split ignores the other classes."""
    return np.random.default_rng([seed % 2**63, zlib.crc32(key.encode())])


def split_plan(
    counts: dict[str, int], normal: Sequence[str], anomaly: Sequence[str], seed: int,
) -> dict[str, list[tuple[str, int]]]:
    """Assign every image, as ``(class, index in its sorted folder)``, to train, val or test.

    Each normal class: 20% test; of the rest, 15% val and 85% train. Anomalies never go to
    train: as many as there are test normals go to test (a balanced test set), as many as there
    are val normals go to val (so a threshold can be chosen on validation data); the rest stay
    unused. Lists are in seeded random order, which ``subset`` relies on.
    """
    plan: dict[str, list[tuple[str, int]]] = {s: [] for s in SPLITS}
    for c in normal:
        order = _rng(seed, c).permutation(counts[c])
        n_test = round(TEST_FRACTION * counts[c])
        n_val = round(VAL_FRACTION * (counts[c] - n_test))
        plan["test"] += [(c, int(i)) for i in order[:n_test]]
        plan["val"] += [(c, int(i)) for i in order[n_test:n_test + n_val]]
        plan["train"] += [(c, int(i)) for i in order[n_test + n_val:]]
    pool = [(c, i) for c in anomaly for i in range(counts[c])]
    order = _rng(seed, "anomalies:" + ",".join(anomaly)).permutation(len(pool))
    n_test = min(len(plan["test"]), len(pool))
    n_val = min(len(plan["val"]), len(pool) - n_test)
    plan["test"] += [pool[k] for k in order[:n_test]]
    plan["val"] += [pool[k] for k in order[n_test:n_test + n_val]]
    return plan


def subset(keys: list[tuple[str, int]], n: int | None) -> list[tuple[str, int]]:
    """The first ``n`` of a plan's list, shared among its classes in proportion (largest remainder)."""
    if n is None or n >= len(keys):
        return keys
    if n <= 0:
        raise ValueError(f"n={n}: a subset needs at least one image.")
    names = list(dict.fromkeys(c for c, _ in keys))
    sizes = [sum(c == name for c, _ in keys) for name in names]
    exact = [n * s / len(keys) for s in sizes]
    take = [math.floor(e) for e in exact]
    for k in sorted(range(len(names)), key=lambda k: take[k] - exact[k])[: n - sum(take)]:
        take[k] += 1
    quota = dict(zip(names, take, strict=True))
    kept = []
    for c, i in keys:  # in plan order, which is seeded random within each class
        if quota[c] > 0:
            kept.append((c, i))
            quota[c] -= 1
    return kept


# --- augmentation -------------------------------------------------------------------------------

def train_augmentation() -> v2.Compose:
    """Write-up 001's training augmentations on float images in [0, 1]: flips, ±10° rotation, colour jitter."""
    return v2.Compose([
        v2.RandomHorizontalFlip(),
        v2.RandomVerticalFlip(),  # an endoscope has no "up"
        v2.RandomRotation(10, interpolation=v2.InterpolationMode.BILINEAR),
        # Modest jitter, and none of hue: the mucosa's hue is itself a cue for what is normal
        # (and a hue shift, through HSV, would triple the cost of an item).
        v2.ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1),
    ])


# --- the stand-in -------------------------------------------------------------------------------

def _draw(name: str, index: int, anomaly: bool, seed: int) -> dict[str, np.ndarray]:
    """All the random numbers of one stand-in frame, from its own stream (so subsets agree)."""
    style = np.random.default_rng(zlib.crc32(name.encode()))  # per class: fold spacing and tint
    rng = _rng(seed, f"{name}/{index}")
    red = rng.uniform(0.74, 0.92)
    green = red * rng.uniform(0.36, 0.5) * style.uniform(0.92, 1.08)
    # Specular spots: x, y, half-width, half-height, brightness; the last slot is left for the
    # glint on a polyp.
    spots = np.zeros((7, 5))
    spots[:, :2] = rng.uniform(-0.8, 0.8, (7, 2))
    spots[:, 2:4] = rng.uniform(0.012, 0.045, (7, 2))
    spots[: rng.integers(2, 7), 4] = 1
    angle, dist = rng.uniform(0, 2 * math.pi), rng.uniform(0, 0.5)
    return {
        "tint": np.array([red, green, green * rng.uniform(0.75, 0.95)]),
        "coarse": rng.standard_normal((5, 5)),
        "mid": rng.standard_normal((9, 9)),
        "fine": rng.standard_normal((21, 21)),
        "vessel": rng.standard_normal((7, 7)),
        "pit": rng.standard_normal((31, 31)),
        # lumen x, y, radius, darkness; folds: rings per unit distance, depth; vessel strength
        "lumen": np.array([*rng.uniform(-0.7, 0.7, 2), rng.uniform(0.15, 0.35), rng.uniform(0.5, 0.9)]),
        "folds": np.array([style.uniform(2.5, 5.0) * rng.uniform(0.85, 1.15), rng.uniform(0.03, 0.09)]),
        "vessels": np.array(rng.uniform(0.25, 0.7)),
        "spots": spots,
        "frame": np.array(rng.uniform(1.15, 1.35)),
        # polyp x, y, radius, contrast (0: no polyp), dome height; lobes: 3 amplitudes, 3 phases
        "polyp": np.array([dist * math.cos(angle), dist * math.sin(angle), rng.uniform(0.2, 0.55),
                           rng.uniform(0.3, 1.0) if anomaly else 0.0, rng.uniform(0.5, 1.2)]),
        "lobes": np.concatenate([rng.uniform(-0.15, 0.15, 3), rng.uniform(0, 2 * math.pi, 3)]),
        # brighter than the mucosa (it bulges toward the light) and paler (an adenoma) or redder
        "polyp_tint": np.array([0.0, 0.3, 0.25] if rng.random() < 0.5 else [0.1, -0.15, -0.1]),
        "light": np.array([*rng.uniform(-0.7, 0.7, 2), 1.0]),
    }


def _smooth(grids: torch.Tensor, size: int) -> torch.Tensor:
    """Upsample per-image random grids ``(N, g, g)`` to smooth fields ``(N, 1, size, size)``."""
    return F.interpolate(grids[:, None], size=(size, size), mode="bicubic", align_corners=True)


def _blobs(spots: torch.Tensor, size: int) -> torch.Tensor:
    """Sum of axis-aligned Gaussian blobs ``(N, K, [x, y, half-width, half-height, height])``.

    A Gaussian is separable, so the K blobs of an image are one small matrix product.
    """
    t = torch.linspace(-1, 1, size)
    cx, cy, wx, wy, height = (spots[..., k, None] for k in range(5))
    gx = height * torch.exp(-(((t - cx) / wx) ** 2))  # (N, K, size)
    gy = torch.exp(-(((t - cy) / wy) ** 2))
    return (gy.transpose(1, 2) @ gx)[:, None]


def _mucosa(a: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mucosa shading (texture, dark lumen, rings of folds around it, vignette) and its vessels."""
    size = x.shape[-1]
    n = len(a["tint"])
    texture = 0.5 * _smooth(a["coarse"], size) + 0.3 * _smooth(a["mid"], size) + 0.2 * _smooth(a["fine"], size)
    lx, ly, lr, dark = (a["lumen"][:, k].reshape(n, 1, 1, 1) for k in range(4))
    to_lumen = torch.sqrt((x - lx) ** 2 + (y - ly) ** 2)
    freq, depth = (a["folds"][:, k].reshape(n, 1, 1, 1) for k in range(2))
    # The folds are bent by the texture and fade away from the lumen, as haustra do.
    folds = 1 + depth * torch.sin(2 * math.pi * freq * to_lumen + 3 * texture) / (1 + 2 * to_lumen)
    shade = (1 + 0.08 * texture) * (1 - dark * torch.exp(-((to_lumen / lr) ** 2))) * folds * (1 - 0.35 * (x**2 + y**2))
    # Vessels: the zero crossings of a smooth random field form a network of thin curvy lines;
    # they darken green and blue most, so they read as dark red.
    vessel = torch.exp(-((_smooth(a["vessel"], size) / 0.06) ** 2)) * a["vessels"].reshape(n, 1, 1, 1)
    veins = 1 - vessel * torch.tensor([0.25, 0.55, 0.5]).reshape(1, 3, 1, 1)
    return shade, veins


def _polyps(a: dict[str, torch.Tensor], shade: torch.Tensor, veins: torch.Tensor, x: torch.Tensor,
            y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Add a lobed dome to each frame: own tint, pit pattern, Lambert shading, a cast shadow, few vessels.

    Returns the frames, the polyp masks (bool) and the glint on each dome (blob centre and width).
    """
    n, size = len(shade), x.shape[-1]
    px, py, pr, contrast, height = (a["polyp"][:, k].reshape(n, 1, 1, 1) for k in range(5))
    dx, dy = x - px, y - py
    theta = torch.atan2(dy, dx)
    lobe = a["lobes"].reshape(n, 6, 1, 1)
    lobes = 1 + sum(lobe[:, k:k + 1] * torch.cos((k + 1) * theta - lobe[:, k + 3:k + 4]) for k in range(3))
    d = torch.sqrt(dx**2 + dy**2) / (pr * lobes)
    light = (a["light"] / a["light"].norm(dim=1, keepdim=True)).reshape(n, 3, 1, 1)
    # A paraboloid of height `height * pr`: its surface normal is (gx, gy, 1).
    gx, gy = 2 * height * dx / pr, 2 * height * dy / pr
    lambert = (gx * light[:, :1] + gy * light[:, 1:2] + light[:, 2:]) / torch.sqrt(gx**2 + gy**2 + 1)
    dome = 1 + contrast * ((lambert / light[:, 2:]).clamp(0.5, 1.5) - 1)
    pit = 1 + 0.06 * contrast * _smooth(a["pit"], size)
    tint = a["tint"].reshape(n, 3, 1, 1)
    # It stands out of the lumen's shadow and toward the light: it keeps only part of the shading.
    polyp = (tint * (1 + contrast * (0.25 + a["polyp_tint"].reshape(n, 3, 1, 1))) * shade.sqrt()
             * dome * pit * veins**0.3)
    away = -(dx * light[:, :1] + dy * light[:, 1:2]) / torch.sqrt(dx**2 + dy**2).clamp(min=1e-3)
    shadow = 1 - 0.3 * contrast * torch.exp(-(((d - 1.08) / 0.1) ** 2)) * away.clamp(min=0)
    cover = torch.sigmoid((1 - d) / 0.04)
    image = tint * shade * veins * shadow * (1 - cover) + polyp * cover
    glint = torch.cat([px + 0.45 * pr * light[:, :1], py + 0.45 * pr * light[:, 1:2], 0.07 * pr], 1)
    return image, d < 1, glint.reshape(n, 3)


def render_endoscopy(keys: Sequence[tuple[str, int]], anomalous: Sequence[bool], size: int,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Procedural endoscopy frames ``(N, 3, size, size)`` uint8 and polyp masks ``(N, 1, size, size)``.

    Frame ``(class, index)`` looks the same in whichever subset it is drawn.
    """
    n = len(keys)
    if n == 0:
        return np.zeros((0, 3, size, size), np.uint8), np.zeros((0, 1, size, size), np.uint8)
    draws = [_draw(c, i, bad, seed) for (c, i), bad in zip(keys, anomalous, strict=True)]
    a = {k: torch.tensor(np.stack([d[k] for d in draws]), dtype=torch.float32) for k in draws[0]}
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    x, y = xs[None, None], ys[None, None]

    shade, veins = _mucosa(a, x, y)
    image = a["tint"].reshape(n, 3, 1, 1) * shade * veins
    masks = torch.zeros(n, 1, size, size, dtype=torch.bool)
    spots = a["spots"]
    bad = torch.tensor(anomalous, dtype=torch.bool)
    if bad.any():  # the polyp's maths only for the frames that have one
        sub = {k: v[bad] for k, v in a.items()}
        image[bad], masks[bad], glint = _polyps(sub, shade[bad], veins[bad], x, y)
        spots[bad, -1] = torch.cat([glint, glint[:, 2:], torch.ones(len(glint), 1)], 1)
    # Specular spots from the endoscope's light on wet mucosa: sharp-edged and nearly white.
    spec = (1.6 * _blobs(spots, size)).clamp(max=1)
    image = image * (1 - spec) + 0.97 * spec
    # The round field of view: black outside, like the corners of a centre-cropped frame.
    frame = torch.sigmoid((a["frame"].reshape(n, 1, 1, 1) - torch.sqrt(x**2 + y**2)) / 0.015)
    image = (image * frame).clamp(0, 1)
    masks = masks & (frame > 0.5)
    return (image * 255).round().to(torch.uint8).numpy(), masks.to(torch.uint8).numpy()


# --- the public loader --------------------------------------------------------------------------

def read_split(
    data_root: Path, normal: list[str], anomaly: list[str], split: str, *, n: int | None,
    size: int, seed: int,
) -> tuple[list[tuple[str, int]], np.ndarray, np.ndarray, list[str], list[str], DataSource]:
    """One split of the real images: its keys, images, masks, image and mask files, and source."""
    layout = choose_layout(data_root, normal + anomaly)
    counts = {c: len(class_files(c, layout.classes[c])) for c in normal + anomaly}
    keys = subset(split_plan(counts, normal, anomaly, seed)[split], n)
    masks_by_stem = mask_index(data_root, layout)
    loaded = {c: read_class(c, layout.classes[c], size, masks_by_stem) for c in dict.fromkeys(c for c, _ in keys)}
    images = np.zeros((len(keys), 3, size, size), np.uint8)
    masks = np.zeros((len(keys), 1, size, size), np.uint8)
    for k, (c, i) in enumerate(keys):
        images[k], masks[k] = loaded[c].images[i], loaded[c].masks[i]
    files = [loaded[c].files[i] for c, i in keys]
    mask_files = [loaded[c].mask_files[i] for c, i in keys]
    source = DataSource("Kvasir", "real", settings.display_path(layout.folder, data_root),
                        note=f"{layout.kind} layout")
    return keys, images, masks, files, mask_files, source


def overlay_corner(size: int) -> tuple[slice, slice]:
    """The rows and columns of a ``size`` x ``size`` frame that ``blank_overlay`` blacks out."""
    return slice(math.floor(OVERLAY_TOP * size), None), slice(None, math.ceil(OVERLAY_RIGHT * size))


def frame_pixels(size: int, blank_overlay: bool) -> torch.Tensor:
    """(size, size) booleans, False in the blanked scope-guide corner (all True without blanking).

    Pixel-level metrics leave the blanked corner out: it is black in every input and every
    reconstruction, so its error is zero and it would count as easy mucosa, raising a pixel
    AUROC without any localisation.
    """
    keep = torch.ones(size, size, dtype=torch.bool)
    if blank_overlay:
        keep[overlay_corner(size)] = False
    return keep


def kvasir(
    split: str = "train", *,
    normal_classes: Sequence[str] = ("cecum", "bbps-2-3"),
    anomaly_classes: Sequence[str] = ("polyps",),
    size: int = 96, augment: bool | None = None, n: int | None = None,
    policy: str | None = None, root: str | Path | None = None, download: bool = True,
    seed: int | None = None, blank_overlay: bool = False,
) -> TensorImageDataset:
    """Endoscopy images ``(N, 3, size, size)`` uint8, label 0 = normal and 1 = anomaly (polyp).

    Splits, fixed by ``seed`` and the class names, never by ``n``: each normal class gives 20%
    to test and, of the remaining 80%, 15% to val and 85% to train. Anomalies never enter
    train; test gets as many as it has normals (balanced), val as many as it has normals (for
    choosing a detection threshold). ``n`` then keeps a seeded subset in proportion to the
    classes, so val and test stay balanced. ``augment`` (default: on for train) sets the
    transform to flips, ±10° rotation and a modest colour jitter.

    ``masks`` is ``(N, 1, size, size)`` uint8 in {0, 1} (zeros for normals) when the split has
    anomalies and every one of them has a segmentation mask, else None; ``extras`` holds
    ``class_names``, ``files`` and ``mask_files`` ("" where an image has no mask) per image.
    The stand-in has 400 frames per normal class and 1,000 polyps, split the same way.

    ``blank_overlay=True`` blacks out the lower-left corner where HyperKvasir frames carry a
    scope-guide box (and zeroes the masks there), in every frame, so that a detector cannot tell
    polyp frames by the box's absence; see ``OVERLAY_TOP``.
    """
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: Kvasir is split into {SPLITS}.")
    normal = [canonical(c) for c in normal_classes]
    anomaly = [canonical(c) for c in anomaly_classes]
    if not normal or not anomaly or set(normal) & set(anomaly):
        raise ValueError(f"need disjoint, non-empty normal {normal} and anomaly {anomaly} classes.")
    seed = settings.current().seed if seed is None else seed
    augment = split == "train" if augment is None else augment
    kind, _ = resolve(INFO, policy=policy, root=root, download=download)
    if kind == "real":
        data_root = Path(root) if root is not None else settings.current().data_root
        keys, images, mask_array, files, mask_files, source = read_split(
            data_root, normal, anomaly, split, n=n, size=size, seed=seed)
    else:
        counts = {c: STANDIN_PER_NORMAL_CLASS for c in normal}
        counts.update({c: -(-STANDIN_ANOMALIES // len(anomaly)) for c in anomaly})
        keys = subset(split_plan(counts, normal, anomaly, seed)[split], n)
        images, mask_array = render_endoscopy(keys, [c in anomaly for c, _ in keys], size, seed)
        files = [f"standin/{c}/{i:04d}" for c, i in keys]
        mask_files = [f"standin/{c}/{i:04d}/mask" if c in anomaly else "" for c, i in keys]
        source = DataSource("Kvasir", "standin", f"nbhelpers.data.kvasir.render_endoscopy(seed={seed})",
                            note="procedural frames, not endoscopy images")
    if blank_overlay:
        corner = (..., *overlay_corner(size))
        images[corner] = mask_array[corner] = 0
    labels = np.array([int(c in anomaly) for c, _ in keys], np.int64)
    has_all_masks = labels.any() and all(m for m, lab in zip(mask_files, labels, strict=True) if lab)
    return TensorImageDataset(
        images=torch.from_numpy(images),
        labels=torch.from_numpy(labels),
        classes=["normal", "polyp" if anomaly == ["polyps"] else "+".join(anomaly)],
        source=source,
        masks=torch.from_numpy(mask_array) if has_all_masks else None,
        transform=train_augmentation() if augment else None,
        extras={"split": split, "class_names": [c for c, _ in keys], "files": files,
                "mask_files": mask_files, "normal_classes": normal, "anomaly_classes": anomaly},
    )
