"""Kvasir: both official layouts, class-name mapping, splits, masks, the cache, errors and the stand-in."""

import json
import re
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nbhelpers.data.core import DataError
from nbhelpers.data.kvasir import canonical, frame_pixels, kvasir, render_endoscopy

HK_FOLDERS = {  # HyperKvasir: labeled-images/<tract>/<category>/<class>
    "cecum": "lower-gi-tract/anatomical-landmarks/cecum",
    "bbps-2-3": "lower-gi-tract/quality-of-mucosal-views/bbps-2-3",
    "polyps": "lower-gi-tract/pathological-findings/polyps",
}
W, H = 48, 32  # wider than high, like the real frames: the loader must crop the sides away
SIZE = 16


def frame_name(name: str, i: int) -> str:
    """A HyperKvasir-style file name: a UUID (the release names every image by one), fixed per frame."""
    return f"{uuid.uuid5(uuid.NAMESPACE_URL, f'{name}/{i}')}.jpg"


def write_frame(path: Path, colour: tuple[int, int, int], polyp: bool) -> None:
    """A frame of one colour with green side strips (outside the centre square) and, for a
    polyp, a white square in the top-left quarter of the centre square. A polyp also goes to
    segmented-images/images/ with its JPEG mask of the same name in segmented-images/masks/ and
    its box in bounding-boxes.json, as in the release's segmented images."""
    a = np.zeros((H, W, 3), np.uint8)
    a[:] = colour
    a[:, :8] = a[:, -8:] = (0, 255, 0)
    if polyp:
        a[4:12, 12:20] = 255
        mask = np.zeros((H, W), np.uint8)
        mask[4:12, 12:20] = 255
        mask[20:28, 12:36] = 100  # grey, like a JPEG fringe: below the threshold of 128
        segmented = path.parents[4] / "segmented-images"
        for folder, pixels in (("masks", mask), ("images", a)):
            (segmented / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(segmented / folder / path.name, quality=95)
        boxes_path = segmented / "bounding-boxes.json"
        boxes = json.loads(boxes_path.read_text()) if boxes_path.is_file() else {}
        boxes[path.stem] = {"height": H, "width": W,
                            "bbox": [{"label": "polyp", "xmin": 12, "ymin": 4, "xmax": 20, "ymax": 12}]}
        boxes_path.write_text(json.dumps(boxes))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path, quality=95)


def write_hyperkvasir(root: Path, counts=None) -> Path:
    """A HyperKvasir tree: cecum and bbps-2-3 (normal, reddish) and polyps with masks, named by
    UUID, with labeled-images/image-labels.csv (CRLF lines, "Video file" holds the file stem)."""
    counts = counts or {"cecum": 20, "bbps-2-3": 10, "polyps": 30}
    labeled = root / "HyperKvasir" / "labeled-images"
    rows = ["Video file,Organ,Finding,Classification"]
    for name, count in counts.items():
        for i in range(count):
            colour = (200, 90 + i % 20, 80) if name != "polyps" else (180, 70, 60)
            path = labeled / HK_FOLDERS[name] / frame_name(name, i)
            write_frame(path, colour, polyp=name == "polyps")
            rows.append(f"{path.stem},Lower GI,{name},{HK_FOLDERS[name].split('/')[1]}")
    (labeled / "image-labels.csv").write_bytes("\r\n".join(rows).encode())
    return root


def write_kvasir_v2(root: Path) -> Path:
    """A Kvasir v2 tree: normal-cecum, normal-z-line and polyps, no masks."""
    for name, count in {"normal-cecum": 10, "normal-z-line": 10, "polyps": 10}.items():
        for i in range(count):
            path = root / "kvasir-dataset-v2" / name / f"{i:03d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((H, W, 3), (150, 60 + i, 60), np.uint8)).save(path)
    return root


def files(ds) -> set[str]:
    return set(ds.extras["files"])


# --- reading the real layouts -------------------------------------------------------------------

def test_hyperkvasir_images_labels_and_aligned_masks(tmp_path):
    root = write_hyperkvasir(tmp_path / "data")
    ds = kvasir("test", size=SIZE, root=root, policy="real", seed=0)
    assert ds.source.kind == "real" and "HyperKvasir" in ds.source.location
    assert ds.images.shape == (len(ds), 3, SIZE, SIZE) and ds.images.dtype == torch.uint8
    assert ds.classes == ["normal", "polyp"]
    labels = ds.labels.numpy()
    names = np.array(ds.extras["class_names"])
    assert set(names[labels == 0]) == {"cecum", "bbps-2-3"} and set(names[labels == 1]) == {"polyps"}
    # The green side strips lie outside the centre square, so cropping removed them.
    x = ds.images.float()
    assert (x[:, 0] > 100).all()  # green strips have no red; every frame colour has plenty
    # Masks: {0, 1}, zero for normals; for polyps the white square, the top-left quarter.
    assert ds.masks.shape == (len(ds), 1, SIZE, SIZE) and set(ds.masks.unique().tolist()) == {0, 1}
    assert ds.masks[labels == 0].sum() == 0
    polyp_masks = ds.masks[labels == 1, 0].float()
    assert polyp_masks[:, 2:6, 2:6].mean() == 1 and polyp_masks[:, 8:].sum() == polyp_masks[:, :, 8:].sum() == 0
    inside = x[labels == 1].mean(1)[polyp_masks.bool()].mean()
    outside = x[labels == 1].mean(1)[~polyp_masks.bool()].mean()
    assert inside > 200 and outside < 150  # the mask sits on the white square
    # Each polyp's mask is the file of the same name under segmented-images/masks (not the copy of
    # the image under segmented-images/images).
    masks_folder = root / "HyperKvasir" / "segmented-images" / "masks"
    assert all(Path(m) == masks_folder / Path(f).name
               for f, m, y in zip(ds.extras["files"], ds.extras["mask_files"], labels, strict=True) if y)


def test_kvasir_v2_names_map_to_hyperkvasir_spelling(tmp_path):
    root = write_kvasir_v2(tmp_path / "data")
    assert canonical("normal-z-line") == "z-line" and canonical("Cecum") == "cecum"
    v2_spelling = kvasir("test", normal_classes=("normal-cecum", "normal-z-line"), size=SIZE, root=root, policy="real")
    hk_spelling = kvasir("test", normal_classes=("cecum", "z-line"), size=SIZE, root=root, policy="real")
    assert files(v2_spelling) == files(hk_spelling)
    assert set(v2_spelling.extras["class_names"]) == {"cecum", "z-line", "polyps"}
    assert "Kvasir v2" in v2_spelling.source.note
    assert v2_spelling.masks is None  # Kvasir v2 has no masks
    assert v2_spelling.extras["mask_files"] == [""] * len(v2_spelling)


def test_splits_are_disjoint_balanced_and_keep_anomalies_out_of_train(tmp_path):
    root = write_hyperkvasir(tmp_path / "data")
    splits = {s: kvasir(s, size=SIZE, root=root, policy="real", seed=3) for s in ("train", "val", "test")}
    assert splits["train"].labels.sum() == 0  # never an anomaly in training
    for s in ("val", "test"):
        counts = splits[s].labels.bincount(minlength=2).tolist()
        assert counts[0] == counts[1] > 0, (s, counts)
    assert not (files(splits["train"]) & files(splits["val"]) or files(splits["train"]) & files(splits["test"])
                or files(splits["val"]) & files(splits["test"]))
    normals = sum(int((ds.labels == 0).sum()) for ds in splits.values())
    assert normals == 30  # every normal image is used exactly once
    # Per normal class: 20% test, then 15% of the rest to val (cecum 20 -> 4 test, 2 val).
    cecum_test = [c for c in splits["test"].extras["class_names"] if c == "cecum"]
    cecum_val = [c for c in splits["val"].extras["class_names"] if c == "cecum"]
    assert (len(cecum_test), len(cecum_val)) == (4, 2)
    # The same seed gives the same split; another seed another one.
    assert files(kvasir("test", size=SIZE, root=root, policy="real", seed=3)) == files(splits["test"])
    assert files(kvasir("test", size=SIZE, root=root, policy="real", seed=4)) != files(splits["test"])


def test_subset_n_stays_inside_its_split_and_balanced(tmp_path):
    root = write_hyperkvasir(tmp_path / "data")
    full = kvasir("test", size=SIZE, root=root, policy="real", seed=0)
    small = kvasir("test", size=SIZE, root=root, policy="real", seed=0, n=6)
    assert len(small) == 6 and files(small) <= files(full)
    assert small.labels.bincount().tolist() == [3, 3]
    train = kvasir("train", size=SIZE, root=root, policy="real", seed=0, n=5, augment=False)
    assert files(train) <= files(kvasir("train", size=SIZE, root=root, policy="real", seed=0))


def test_augmentation_is_on_for_train_only_and_keeps_the_range(tmp_path):
    root = write_hyperkvasir(tmp_path / "data")
    train = kvasir("train", size=SIZE, root=root, policy="real")
    assert train.transform is not None and kvasir("test", size=SIZE, root=root, policy="real").transform is None
    torch.manual_seed(0)
    xs = torch.stack([train[i][0] for i in range(len(train))])
    assert xs.shape == (len(train), 3, SIZE, SIZE) and xs.min() >= 0 and xs.max() <= 1
    assert not torch.equal(xs, train.tensors()[0])  # something was augmented


def test_decoded_images_are_cached_and_the_cache_follows_the_files(tmp_path):
    root = write_hyperkvasir(tmp_path / "data")
    first = kvasir("test", size=SIZE, root=root, policy="real", seed=0)
    caches = sorted((tmp_path / "cache" / "kvasir").glob("*.npz"))
    assert [p.name.split("-16px-")[0] for p in caches] == ["bbps-2-3", "cecum", "polyps"]
    assert torch.equal(kvasir("test", size=SIZE, root=root, policy="real", seed=0).images, first.images)
    # A cache cut short (a full disk, a killed process) is rebuilt, not trusted.
    caches[1].write_bytes(caches[1].read_bytes()[:500])
    assert torch.equal(kvasir("test", size=SIZE, root=root, policy="real", seed=0).images, first.images)
    # Rewriting an image changes its fingerprint, so the stale cache is not used.
    victim = Path(first.extras["files"][0])
    Image.fromarray(np.full((H, W, 3), 7, np.uint8)).save(victim)
    again = kvasir("test", size=SIZE, root=root, policy="real", seed=0)
    assert again.images[0].float().mean() < 10


def test_blank_overlay_blacks_out_the_lower_left_corner_only(tmp_path):
    root = write_hyperkvasir(tmp_path / "data")
    plain = kvasir("test", size=SIZE, root=root, policy="real", seed=0)
    blanked = kvasir("test", size=SIZE, root=root, policy="real", seed=0, blank_overlay=True)
    top, right = 10, 6  # 0.66 and 0.32 of 16 px, rounded outward
    assert blanked.images[:, :, top:, :right].max() == 0 and plain.images[:, :, top:, :right].min() > 0
    keep = torch.ones(SIZE, SIZE, dtype=torch.bool)
    keep[top:, :right] = False
    assert torch.equal(blanked.images[:, :, keep], plain.images[:, :, keep])
    assert torch.equal(blanked.masks, plain.masks)  # the fixture's polyps lie outside the corner
    assert torch.equal(frame_pixels(SIZE, blank_overlay=True), keep)  # what pixel metrics keep
    assert frame_pixels(SIZE, blank_overlay=False).all()


# --- errors ------------------------------------------------------------------------------------

def test_missing_class_lists_what_was_found(tmp_path):
    root = write_hyperkvasir(tmp_path / "data")
    with pytest.raises(DataError) as err:
        kvasir("test", normal_classes=("z-line",), size=SIZE, root=root, policy="real")
    msg = str(err.value)
    assert "z-line" in msg and "cecum (20)" in msg and "polyps (30)" in msg and str(root / "HyperKvasir") in msg


def test_empty_class_folder_is_named(tmp_path):
    root = write_hyperkvasir(tmp_path / "data")
    empty = root / "HyperKvasir" / "labeled-images" / "lower-gi-tract" / "anatomical-landmarks" / "ileum"
    empty.mkdir()
    with pytest.raises(DataError, match=re.escape(str(empty))):
        kvasir("test", normal_classes=("ileum",), size=SIZE, root=root, policy="real")


def test_corrupt_jpeg_is_named(tmp_path):
    root = write_hyperkvasir(tmp_path / "data")
    bad = root / "HyperKvasir" / "labeled-images" / HK_FOLDERS["cecum"] / frame_name("cecum", 0)
    bad.write_bytes(bad.read_bytes()[:100])  # truncated mid-scan
    with pytest.raises(DataError, match=bad.name):
        kvasir("train", size=SIZE, root=root, policy="real")


def test_mask_of_another_size_is_named(tmp_path):
    root = write_hyperkvasir(tmp_path / "data")
    mask = root / "HyperKvasir" / "segmented-images" / "masks" / frame_name("polyps", 0)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(mask)
    with pytest.raises(DataError, match=mask.name):
        kvasir("test", size=SIZE, root=root, policy="real")


# --- fallback order ----------------------------------------------------------------------------

def test_fallback_order(tmp_path):
    root = write_hyperkvasir(tmp_path / "data")
    assert kvasir("test", size=SIZE, root=root, policy="auto").source.kind == "real"
    assert kvasir("test", size=SIZE, root=root, policy="standin").source.kind == "standin"
    empty = tmp_path / "nothing"
    assert kvasir("test", size=SIZE, root=empty, policy="auto", download=False).source.kind == "standin"
    with pytest.raises(DataError, match="datasets.simula.no/hyper-kvasir"):
        kvasir("test", size=SIZE, root=empty, policy="real")


# --- the stand-in ------------------------------------------------------------------------------

def test_standin_shapes_ranges_and_determinism():
    ds = kvasir("test", size=32, policy="standin", seed=0, n=40)
    assert ds.source.kind == "standin" and ds.images.shape == (40, 3, 32, 32) and ds.images.dtype == torch.uint8
    assert ds.labels.bincount().tolist() == [20, 20]
    assert ds.masks.shape == (40, 1, 32, 32) and ds.masks[ds.labels == 0].sum() == 0
    assert (ds.masks[ds.labels == 1].flatten(1).sum(1) > 0).all()  # every polyp has a mask
    x, _ = ds[0]
    assert x.dtype == torch.float32 and x.min() >= 0 and x.max() <= 1
    again = kvasir("test", size=32, policy="standin", seed=0, n=40)
    assert torch.equal(again.images, ds.images) and torch.equal(again.masks, ds.masks)
    assert not torch.equal(kvasir("test", size=32, policy="standin", seed=1, n=40).images, ds.images)
    # Mucosa is red-dominant, like the real frames.
    mean = ds.images.float().mean((0, 2, 3))
    assert mean[0] > mean[1] and mean[0] > mean[2]


def test_standin_frame_does_not_depend_on_the_subset():
    keys = [("cecum", 3), ("polyps", 7), ("polyps", 8)]
    images, masks = render_endoscopy(keys, [False, True, True], 24, seed=5)
    alone, alone_mask = render_endoscopy(keys[1:2], [True], 24, seed=5)
    assert np.array_equal(images[1], alone[0]) and np.array_equal(masks[1], alone_mask[0])


def _mask_contrast(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Per image: the largest channel difference between the mean inside a mask and in a
    4-pixel ring around it."""
    out = []
    for img, mask in zip(images, masks, strict=True):
        grown = torch.nn.functional.max_pool2d(mask[None, None].float(), 9, 1, 4)[0, 0].bool()
        ring = grown & ~mask
        out.append((img[:, mask].mean(1) - img[:, ring].mean(1)).abs().max())
    return torch.stack(out)


def test_standin_masks_cover_a_visible_polyp():
    ds = kvasir("test", size=64, policy="standin", seed=0, n=120)
    x, bad = ds.images.float() / 255, ds.labels == 1
    masks = ds.masks[bad, 0].bool()
    polyps = _mask_contrast(x[bad], masks)
    control = _mask_contrast(x[~bad], masks)  # the same regions on normal frames
    # A real signal: polyps stand out of their surround more than the same region of a normal
    # frame does; not a trivial one: some polyps are faint.
    assert polyps.median() > 1.4 * control.median()
    assert (polyps > control).float().mean() > 0.7
    assert polyps.min() < control.median()
