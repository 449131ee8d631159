"""CMP Facades in the pix2pix layout: aligned (label map, photo) pairs, and a procedural stand-in.

The pix2pix download holds ``facades/{train,val,test}/*.jpg``; each file is one pair side by
side, 512x256: the rectified photo on the LEFT half and its CMP label map on the RIGHT half.
``direction="label2photo"`` makes the label map the input and the photo the target.

Offline, the stand-in draws buildings (floors, window grid, sills, shutters, balconies,
mouldings, pilasters, doors, shop fronts) as a label map in the CMP colours and renders a
"photo" of each: plastered wall, glazed windows with frames and reflections, cast shadows, sky.
"""

from __future__ import annotations

import math
import os
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from nbhelpers import settings
from nbhelpers.data.core import DataError, DatasetInfo, DataSource, download_file, register, resolve

SPLITS = ("train", "val", "test")
DIRECTIONS = ("label2photo", "photo2label")
URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz"
OFFICIAL_COUNTS = {"train": 400, "test": 106}  # the pix2pix archive's (val has 100 more)
STANDIN_COUNTS = {"train": 400, "val": 100, "test": 106}
JITTER_SCALE = 286 / 256  # pix2pix: resize 256 -> 286, then a random 256 crop

# The twelve CMP classes in their label order and the colours the pix2pix label maps give them
# (a jet colour map; these are the mean colours of the maps' flat regions).
CMP_CLASSES = ("background", "facade", "window", "door", "cornice", "sill", "balcony", "blind",
               "deco", "molding", "pilaster", "shop")
CMP_COLOURS = np.array([
    (0, 0, 222), (0, 48, 255), (0, 128, 255), (0, 207, 255), (32, 255, 224), (113, 254, 141),
    (192, 255, 63), (255, 240, 1), (255, 159, 1), (254, 80, 1), (253, 1, 1), (174, 0, 1),
], np.uint8)
(BACKGROUND, FACADE, WINDOW, DOOR, CORNICE, SILL, BALCONY, BLIND, DECO, MOLDING, PILASTER,
 SHOP) = range(12)

INSTRUCTIONS = (
    f"download {URL} and unpack it into <data root>/, so that <data root>/facades/train/1.jpg "
    "exists (each file 512x256: photo left, label map right)"
)


# --- the dataset --------------------------------------------------------------------------------

def random_jitter(pair: torch.Tensor) -> torch.Tensor:
    """pix2pix's jitter on a stacked ``(6, s, s)`` pair: upsize by 286/256, random crop, random mirror.

    Input and target get the same crop and flip, so they stay aligned. Nearest-neighbour
    resizing, as in the TensorFlow pix2pix tutorial, keeps the label colours pure.
    """
    size = pair.shape[-1]
    big = round(size * JITTER_SCALE)
    pair = F.interpolate(pair[None], size=(big, big), mode="nearest")[0]
    top, left = torch.randint(0, big - size + 1, (2,)).tolist()
    pair = pair[:, top:top + size, left:left + size]
    return pair.flip(-1) if torch.rand(()) < 0.5 else pair


@dataclass
class PairedImages(Dataset):
    """Aligned image pairs held as uint8 ``(N, 3, size, size)``; ``ds[i]`` is ``(input, target)``.

    Items are float in [-1, 1], the range of pix2pix's tanh generator. ``jitter`` applies
    :func:`random_jitter` to each pair (pix2pix's training augmentation), drawing from torch's
    RNG so that a seeded run repeats.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    source: DataSource
    files: list[str]
    jitter: bool = False
    extras: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.inputs.shape != self.targets.shape or len(self.files) != len(self.inputs):
            raise ValueError(f"inputs {tuple(self.inputs.shape)}, targets {tuple(self.targets.shape)} "
                             f"and {len(self.files)} files do not pair up")

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        pair = torch.cat([self.inputs[i], self.targets[i]]).float().div_(127.5).sub_(1)
        if self.jitter:
            pair = random_jitter(pair)
        return pair[:3], pair[3:]


# --- the real files -----------------------------------------------------------------------------

def _number_first(path: Path) -> tuple[float, str]:
    """Sort 1.jpg, 2.jpg, ..., 10.jpg numerically, anything else after them by name."""
    return (int(path.stem) if path.stem.isdigit() else math.inf, path.name)


def find_facades(root: str | Path) -> Path | None:
    """``<root>/facades`` when it holds a split folder with .jpg pairs, else None."""
    folder = Path(root) / "facades"
    has_split = any(any((folder / s).glob("*.jpg")) for s in SPLITS if (folder / s).is_dir())
    return folder if has_split else None


def pair_files(folder: Path) -> list[Path]:
    """The .jpg pairs of a split folder in numeric order (1.jpg, 2.jpg, ..., 10.jpg)."""
    files = sorted(folder.glob("*.jpg"), key=_number_first)
    if not files:
        raise DataError(f"{folder}: no .jpg pairs. Fix: unpack the pix2pix archive again ({INSTRUCTIONS}).")
    return files


def read_pairs(files: list[Path], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Photos and label maps ``(N, 3, size, size)`` uint8 from side-by-side pair files."""
    photos = np.empty((len(files), 3, size, size), np.uint8)
    labels = np.empty_like(photos)
    for i, path in enumerate(files):
        try:
            with Image.open(path) as im:
                pair = im.convert("RGB")
        except (OSError, SyntaxError, ValueError) as err:  # truncated, corrupt or not an image
            raise DataError(f"{path}: cannot be decoded as an image ({err}). Fix: replace it with "
                            "the file from the pix2pix archive.") from err
        w, h = pair.size
        if w != 2 * h:
            raise DataError(
                f"{path}: {w}x{h} pixels, but a pix2pix facades file is two squares side by side "
                "(512x256): the photo on the left, the label map on the right. Fix: remove or "
                "replace it with the file from the pix2pix archive."
            )
        for out, box in ((photos, (0, 0, h, h)), (labels, (h, 0, w, h))):
            out[i] = np.asarray(pair.resize((size, size), Image.Resampling.BILINEAR, box=box)).transpose(2, 0, 1)
    return photos, labels


def download_facades(root: Path) -> Path:
    """Fetch the pix2pix archive and unpack it into ``<root>/facades`` in one atomic rename."""
    root = Path(root)
    # The pix2pix authors publish no checksum for this archive, so instead of an MD5 we check
    # that it unpacks and holds the known number of pairs.
    archive = download_file(URL, root / "facades.tar.gz")
    with tempfile.TemporaryDirectory(dir=root, prefix=".facades-") as tmp:
        try:
            with tarfile.open(archive) as tar:
                # The "data" filter refuses absolute paths and links out of the folder.
                tar.extractall(tmp, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
            archive.unlink(missing_ok=True)
            raise DataError(f"{archive}: cannot be unpacked ({err}); deleted it, so the next run "
                            "downloads it again.") from err
        unpacked = Path(tmp) / "facades"
        counts = {s: len(list((unpacked / s).glob("*.jpg"))) for s in OFFICIAL_COUNTS}
        if counts != OFFICIAL_COUNTS:
            archive.unlink()
            raise DataError(f"{archive}: held {counts} pairs, not the official {OFFICIAL_COUNTS}; "
                            "deleted it, so the next run downloads it again.")
        try:
            os.replace(unpacked, root / "facades")
        except OSError as err:
            raise DataError(f"{root / 'facades'} exists but is not a usable facades folder ({err}). "
                            "Fix: delete it and run again.") from err
    archive.unlink()
    return root / "facades"


INFO = register(DatasetInfo(
    name="CMP Facades",
    find=find_facades,
    instructions=INSTRUCTIONS,
    standin="procedural buildings: CMP-coloured label maps and rendered 'photos' of them",
    download=download_facades,
))


# --- the stand-in -------------------------------------------------------------------------------

WALLS = np.array([(0.86, 0.82, 0.70), (0.80, 0.72, 0.58), (0.85, 0.70, 0.45), (0.70, 0.70, 0.68),
                  (0.85, 0.65, 0.55), (0.90, 0.85, 0.60), (0.72, 0.76, 0.68), (0.90, 0.90, 0.88),
                  (0.62, 0.38, 0.30)])
Colour = tuple[float, float, float] | np.ndarray
SHUTTERS = np.array([(0.25, 0.40, 0.30), (0.45, 0.30, 0.20), (0.55, 0.55, 0.55), (0.88, 0.88, 0.85)])


class _Canvas:
    """A label map and a photo drawn together, rectangle by rectangle, in pixel coordinates."""

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        self.size, self.rng = size, rng
        self.label = np.full((size, size), BACKGROUND, np.uint8)
        self.photo = np.zeros((size, size, 3), np.float32)

    def box(self, y0: float, y1: float, x0: float, x1: float) -> tuple[slice, slice]:
        """Fractions of the image to a pixel window at least one pixel thick."""
        s = self.size
        r0, c0 = round(y0 * s), round(x0 * s)
        return (slice(max(r0, 0), max(round(y1 * s), r0 + 1)), slice(max(c0, 0), max(round(x1 * s), c0 + 1)))

    def rect(self, y0: float, y1: float, x0: float, x1: float, cls: int | None,
             colour: Colour) -> tuple[slice, slice]:
        """Paint a rectangle; ``cls=None`` paints the photo only (a shadow, a frame, a bar)."""
        win = self.box(y0, y1, x0, x1)
        if cls is not None:
            self.label[win] = cls
        self.photo[win] = colour
        return win

    def shadow(self, y: float, x0: float, x1: float, depth: float = 0.012) -> None:
        """Darken the wall just below a ledge: light comes from above."""
        win = self.box(y, y + depth, x0, x1)
        self.photo[win] *= 0.7

    def window(self, y0: float, y1: float, x0: float, x1: float, frame: Colour, glass: np.ndarray) -> None:
        """Glass darkening downward with a sky reflection, in a frame with a cross of mullions."""
        rows, cols = self.rect(y0, y1, x0, x1, WINDOW, frame)
        h, w = rows.stop - rows.start, cols.stop - cols.start
        if h < 3 or w < 3:
            return
        v = np.linspace(0, 1, h - 2)[:, None, None]
        u = np.linspace(0, 1, w - 2)[None, :, None]
        sky = np.array([0.55, 0.65, 0.8])
        pane = glass * (1 - 0.4 * v) + 0.35 * sky * np.clip(1 - 2 * np.abs(u + v - self.rng.uniform(0.4, 1.4)), 0, 1)
        self.photo[rows.start + 1:rows.stop - 1, cols.start + 1:cols.stop - 1] = pane
        self.photo[rows.start + h // 3, cols] = frame  # transom
        self.photo[rows, cols.start + w // 2] = frame  # mullion


def _building(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One procedural facade: the CMP class map ``(size, size)`` and its photo ``(size, size, 3)`` in [0, 1]."""
    c = _Canvas(size, rng)
    sky_top, sky_bottom = np.array([0.55, 0.68, 0.88]), np.array([0.88, 0.9, 0.93])
    grey = rng.uniform(0, 0.6)  # overcast skies are grey
    t = np.linspace(0, 1, size)[:, None, None]
    c.photo[:] = (1 - grey) * (sky_top * (1 - t) + sky_bottom * t) + grey * 0.8
    wall = np.clip(WALLS[rng.integers(len(WALLS))] + rng.uniform(-0.05, 0.05, 3), 0, 1)
    stone = np.clip(wall * 1.12 + 0.05, 0, 1)
    frame = (0.92, 0.92, 0.9) if rng.random() < 0.6 else (0.35, 0.25, 0.18)
    glass = rng.uniform(0.1, 0.25) * np.array([0.9, 0.95, 1.1])
    side = 0.0 if rng.random() < 0.5 else rng.uniform(0.03, 0.12)
    left, right, top = side * rng.uniform(0.5, 1.5), 1 - side * rng.uniform(0.5, 1.5), rng.uniform(0, 0.15)
    c.rect(top, 1, left, right, FACADE, wall)
    c.rect(top, top + 0.03, left, right, MOLDING, stone)  # the roof's moulded edge
    c.rect(top + 0.03, top + 0.045, left - 0.01, right + 0.01, CORNICE, stone * 0.95)
    c.shadow(top + 0.045, left, right)

    floors, cols = int(rng.integers(3, 7)), int(rng.integers(3, 8))
    ground = rng.uniform(1.2, 1.6)  # the ground floor is taller
    floor_h = (1 - top - 0.05) / (floors - 1 + ground)
    col_w = (right - left) / cols
    ww, wh, w_top = col_w * rng.uniform(0.35, 0.6), floor_h * rng.uniform(0.45, 0.65), floor_h * rng.uniform(0.15, 0.3)
    shutters = SHUTTERS[rng.integers(len(SHUTTERS))] if rng.random() < 0.3 else None
    crowns, bands, pilasters = rng.random() < 0.4, rng.random() < 0.4, rng.random() < 0.25
    balconies = rng.random(floors) < 0.25
    if pilasters:
        for k in range(1, cols):
            x = left + k * col_w
            c.rect(top + 0.045, 1, x - 0.012, x + 0.012, PILASTER, stone * 0.97)
            c.rect(top + 0.045, 1, x + 0.008, x + 0.012, None, stone * 0.8)  # its shaded side
    for f in range(floors - 1):
        y = top + 0.05 + f * floor_h
        if bands and f > 0:
            c.rect(y - 0.01, y + 0.005, left, right, MOLDING, stone)
            c.shadow(y + 0.005, left, right)
        wy0, wy1 = y + w_top, y + w_top + wh
        for k in range(cols):
            cx = left + (k + 0.5) * col_w
            if shutters is not None:
                c.rect(wy0, wy1, cx - ww, cx + ww, BLIND, shutters)
                for row in np.arange(wy0, wy1, 0.012)[::2]:  # slats
                    c.rect(row, row + 0.004, cx - ww, cx + ww, None, shutters * 0.75)
            if crowns:
                c.rect(wy0 - 0.03, wy0 - 0.01, cx - 0.65 * ww, cx + 0.65 * ww, CORNICE, stone)
                c.shadow(wy0 - 0.01, cx - 0.65 * ww, cx + 0.65 * ww, 0.006)
            c.window(wy0, wy1, cx - ww / 2, cx + ww / 2, frame, glass)
            c.rect(wy1, wy1 + 0.015, cx - 0.6 * ww, cx + 0.6 * ww, SILL, stone)
            c.shadow(wy1 + 0.015, cx - 0.6 * ww, cx + 0.6 * ww, 0.008)
            if balconies[f]:  # a railing over the lower part of the window, bars over the wall
                b0, b1 = wy1 - 0.3 * wh, wy1 + 0.02
                c.rect(b0, b1, cx - 0.8 * ww, cx + 0.8 * ww, BALCONY, glass * 0.8)
                for x in np.arange(cx - 0.8 * ww, cx + 0.8 * ww, 0.016):
                    c.rect(b0, b1, x + 0.006, x + 0.016, None, wall * 0.85)
                c.rect(b0, b0 + 0.008, cx - 0.8 * ww, cx + 0.8 * ww, None, (0.1, 0.1, 0.1))

    g0 = top + 0.05 + (floors - 1) * floor_h  # the ground floor: a door, then shops or windows
    door = int(rng.integers(cols))
    for k in range(cols):
        cx = left + (k + 0.5) * col_w
        if k == door:
            c.rect(g0 + 0.3 * floor_h, 1, cx - 0.25 * col_w, cx + 0.25 * col_w, DOOR,
                   np.array([0.35, 0.22, 0.14]) * rng.uniform(0.6, 1.3))
            c.rect(g0 + 0.3 * floor_h, 1, cx - 0.01, cx + 0.002, None, (0.15, 0.1, 0.07))
        elif rng.random() < 0.5:
            c.rect(g0 + 0.2 * floor_h, 1, cx - 0.42 * col_w, cx + 0.42 * col_w, SHOP, glass * 0.7)
            c.rect(g0 + 0.2 * floor_h, g0 + 0.3 * floor_h, cx - 0.42 * col_w, cx + 0.42 * col_w, None,
                   rng.uniform(0.2, 0.9, 3))  # the shop sign
        else:
            c.window(g0 + 0.35 * floor_h, g0 + 0.35 * floor_h + wh, cx - ww / 2, cx + ww / 2, frame, glass)
    return c.label, c.photo


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Plaster and weather: smooth blotches plus fine grain, a multiplicative field around 1."""
    coarse = F.interpolate(torch.from_numpy(rng.standard_normal((1, 1, 6, 6))), size=(size, size),
                           mode="bicubic", align_corners=True)[0, 0].numpy()
    return 1 + 0.05 * coarse + 0.03 * rng.standard_normal((size, size))


def render_facades(split: str, indices: list[int], size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stand-in photos and CMP-coloured label maps ``(N, 3, size, size)`` uint8; each pair drawn by its own seed."""
    photos = np.empty((len(indices), 3, size, size), np.uint8)
    labels = np.empty_like(photos)
    for k, index in enumerate(indices):
        rng = np.random.default_rng([seed % 2**63, zlib.crc32(split.encode()), index])
        label, photo = _building(rng, size)
        light = 1 + rng.uniform(-0.15, 0.15) * np.linspace(-1, 1, size)[None, :, None]  # sun from one side
        photo = photo * np.where(label[..., None] == BACKGROUND, 1, _texture(rng, size)[..., None] * light)
        photos[k] = (np.clip(photo, 0, 1) * 255).round().astype(np.uint8).transpose(2, 0, 1)
        labels[k] = CMP_COLOURS[label].transpose(2, 0, 1)
    return photos, labels


# --- the public loader --------------------------------------------------------------------------

def facades(
    split: str = "train", *, size: int = 256, direction: str = "label2photo", n: int | None = None,
    policy: str | None = None, root: str | Path | None = None, download: bool = True,
    seed: int | None = None, jitter: bool | None = None,
) -> PairedImages:
    """CMP Facades pairs at ``size``; items ``(input, target)`` in [-1, 1]; jitter on for train by default.

    ``direction="label2photo"`` gives (label map, photo), ``"photo2label"`` the reverse. ``n``
    keeps a seeded random subset. The pix2pix archive has train/val/test; some copies lack val.
    """
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: the facades splits are {SPLITS}.")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction={direction!r}: choose one of {DIRECTIONS}.")
    seed = settings.current().seed if seed is None else seed
    kind, folder = resolve(INFO, policy=policy, root=root, download=download)
    if kind == "real":
        if not (folder / split).is_dir():
            found = ", ".join(s for s in SPLITS if (folder / s).is_dir())
            raise DataError(
                f"{folder}: no '{split}' split here (found: {found}). The pix2pix archive has "
                f"train, val and test; this copy lacks {split}. Fix: use split='test' to evaluate, "
                f"or unpack the full archive ({URL}) into {folder.parent}."
            )
        files = pair_files(folder / split)
        count = len(files)
        source = DataSource("CMP Facades", "real", settings.display_path(folder / split, root),
                            note="pix2pix layout")
    else:
        count = STANDIN_COUNTS[split]
        source = DataSource("CMP Facades", "standin", f"nbhelpers.data.facades.render_facades(seed={seed})",
                            note="procedural buildings, not photographs")
    keep = np.arange(count)
    if n is not None and n < count:
        keep = np.sort(np.random.default_rng([seed % 2**63, zlib.crc32(split.encode())]).permutation(count)[:n])
    if kind == "real":
        files = [files[i] for i in keep]
        photos, labels = read_pairs(files, size)
    else:
        photos, labels = render_facades(split, keep.tolist(), size, seed)
        files = [f"standin/{split}/{i + 1}" for i in keep]
    inputs, targets = (labels, photos) if direction == "label2photo" else (photos, labels)
    return PairedImages(torch.from_numpy(inputs), torch.from_numpy(targets), source, [str(f) for f in files],
                        jitter=split == "train" if jitter is None else jitter,
                        extras={"split": split, "direction": direction})
