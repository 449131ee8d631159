"""Checks of notebook 02's exercises (EndoVAE on Kvasir): the BCE score without its floor, the
encoder-feature Mahalanobis score, the pixel error map and the pixel-level AUROC.

Each check builds tiny inputs whose answer is known on paper: pixels of 0.5 reconstructed as 0.25
(a Bernoulli KL of 0.5 ln 2 + 0.5 ln(2/3)), training features whose covariance is exactly the
identity (the points +-sqrt(d) e_i), an error on one pixel, four pixels whose AUROC counts three
won pairs of four. Random draws happen under a forked generator, so a check never moves the
notebook's own random stream.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from nbhelpers.exercises import Report, check, seeded


def _values(x: Any) -> torch.Tensor:
    """A returned array or tensor as a float64 tensor, for comparison."""
    return torch.as_tensor(np.asarray(x.detach() if isinstance(x, torch.Tensor) else x), dtype=torch.float64)


# ------------------------------------------------------------ 2.1: BCE without its floor


def _kl(x: float, x_hat: float) -> float:
    """The Bernoulli KL divergence of one pixel, written out."""
    return x * math.log(x / x_hat) + (1 - x) * math.log((1 - x) / (1 - x_hat))


@check("2.1", "the BCE score without its floor")
def bce_excess(report: Report, bce_excess: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Perfect reconstructions of any brightness, hand-computed pixels, pixels at 0 and 1, and the inputs."""
    with seeded():
        images = torch.rand(3, 3, 4, 4)
    images[:, :, 0, :2] = torch.tensor([0.0, 1.0])  # a black and a white pixel in every image
    kept = images.clone()
    out = bce_excess(images.clone(), images)
    if not report.ok(isinstance(out, torch.Tensor) and tuple(out.shape) == (3,),
                     "returns a tensor with one score per image, shape (N,)",
                     f"got {type(out).__name__} {tuple(getattr(out, 'shape', ()))}"):
        return
    report.ok(torch.equal(images, kept), "leaves the images unchanged",
              "an in-place clamp_ would change the notebook's images: use clamp, not clamp_")
    perfect = "zero when the reconstruction equals the image, at any brightness"
    report.hint(report.close(out, torch.zeros(3), perfect),
                "BCE alone is H(x) > 0 at x_hat = x: subtract the binary entropy H(x) = -x ln x - (1-x) ln(1-x)")

    half, quarter = torch.full((1, 3, 2, 2), 0.5), torch.full((1, 3, 2, 2), 0.25)
    report.hint(report.close(bce_excess(quarter, half), [_kl(0.5, 0.25)],
                             "x = 0.5 reconstructed as 0.25: 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75) = 0.1438"),
                "the mean over the 12 pixel values, not their sum; the reconstruction is the first argument")
    fifth = bce_excess(torch.full((1, 1, 2, 2), 0.5), torch.full((1, 1, 2, 2), 0.2))
    report.hint(report.close(fifth, [_kl(0.2, 0.5)],
                             "x = 0.2 reconstructed as 0.5: 0.2 ln 0.4 + 0.8 ln 1.6 = 0.1927"),
                "BCE(x_hat, x) = -x ln x_hat - (1-x) ln(1-x_hat), with x the image and x_hat the reconstruction")
    mixed = half.clone()
    mixed[:, :, 0] = 0.25  # half of the pixels wrong, half perfect
    report.close(bce_excess(mixed, half), [_kl(0.5, 0.25) / 2], "half the pixels perfect halve the score")

    with seeded(1):
        x, x_hat = torch.rand(8, 3, 4, 4), torch.rand(8, 3, 4, 4)
    scores = bce_excess(x_hat, x)
    report.ok(bool((scores >= -1e-6).all()), "never negative (a KL divergence)",
              f"smallest score {scores.min().item():.4g}")
    report.ok(bool(bce_excess(torch.full_like(half, 0.1), half)[0] > bce_excess(quarter, half)[0]),
              "a worse reconstruction scores higher (0.1 against 0.25 for pixels of 0.5)")

    edges = torch.tensor([0.0, 1.0, 0.0, 1.0]).view(1, 1, 2, 2)
    wrong = bce_excess(torch.tensor([1.0, 0.0, 0.0, 1.0]).view(1, 1, 2, 2), edges)
    finite = "finite for black and white pixels reconstructed as their opposite"
    report.hint(report.ok(bool(torch.isfinite(wrong).all()), finite, f"got {wrong.tolist()}"),
                "clamp x_hat and x to [eps, 1 - eps] before taking logarithms (0 ln 0 is nan in floating point)")
    report.close(bce_excess(edges.clone(), edges), [0.0],
                 "about zero for black and white pixels reconstructed exactly", atol=1e-4)


# ------------------------------------------------------- 2.2: encoder-feature Mahalanobis


def _identity_cloud(d: int, n: int, centre: torch.Tensor | None = None) -> torch.Tensor:
    """n points (+-sqrt(d) e_i, repeated) whose mean is ``centre`` and whose covariance is exactly I.

    Ledoit-Wolf shrinks towards a multiple of I with the same trace, so it leaves I unchanged.
    """
    base = math.sqrt(d) * torch.cat([torch.eye(d), -torch.eye(d)])
    cloud = base.repeat(n // (2 * d), 1).double()
    return cloud if centre is None else cloud + centre


@check("2.2", "the encoder-feature Mahalanobis score")
def feature_mahalanobis(report: Report, feature_mahalanobis: Callable[[list, list], Any]) -> None:
    """Identity covariances (hand values), the training mean, sums over depths, units, shapes."""
    c4 = torch.tensor([3.0, -1.0, 0.0, 2.0], dtype=torch.float64)
    train4, train2 = _identity_cloud(4, 8, c4), _identity_cloud(2, 8)
    f4 = torch.stack([c4, c4 + torch.tensor([1.0, 2.0, 0.0, 0.0], dtype=torch.float64)])

    out = feature_mahalanobis([train4], [f4])
    got = _values(out)
    if not report.ok(tuple(got.shape) == (2,), "one score per scored image, shape (N,)",
                     f"got shape {tuple(got.shape)}"):
        return
    report.hint(report.close(got[0], 0.0, "a point at the training mean scores 0", atol=1e-8),
                "the mean comes from the training features: LedoitWolf().fit(train).location_")
    identity = "identity covariance: the squared Euclidean distance over d, (1 + 4) / 4"
    if not report.close(got[1], 5 / 4, identity, atol=1e-8):
        value = got[1].item()
        rooted = any(abs(value - v) < 1e-6 for v in (math.sqrt(5), math.sqrt(5) / 4, math.sqrt(5 / 4)))
        report.hint(False,
                    "divide each depth's squared distance by its dimension d" if abs(value - 5) < 1e-6
                    else "the squared distance: no square root" if rooted
                    else "fit sklearn's LedoitWolf on the training features; its precision_ is S^-1")
    f2 = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    report.close(_values(feature_mahalanobis([train4, train2], [f4, f2])), [0.0, 5 / 4 + 2 / 2],
                 "two depths: the sum of each depth's score, 5/4 + 2/2")

    rng = np.random.default_rng(0)
    train = rng.normal(size=(200, 2)) * [1.0, 10.0]  # the normals spread 10x more along the second axis
    near_far = np.array([[0.0, 10.0], [3.0, 0.0]])
    d = _values(feature_mahalanobis([train], [near_far]))
    spread = "distance in the normals' own spread: (0, 10) is nearer than (3, 0)"
    report.hint(report.ok(bool(d[0] < d[1]), spread, f"got {d.tolist()}"),
                "Mahalanobis, not Euclidean: d^T S^-1 d with S the training covariance")
    alone = torch.cat([_values(feature_mahalanobis([train], [near_far[i:i + 1]])) for i in range(2)])
    report.hint(report.close(alone, d, "a score does not depend on the other images scored with it",
                             atol=1e-8),
                "fit each Gaussian on train_levels only, never on the images being scored")
    report.close(_values(feature_mahalanobis([1000 * train], [1000 * near_far])), d,
                 "units do not matter: features scaled by 1000 give the same scores", atol=1e-6)

    wide_train, wide = rng.normal(size=(6, 10)), rng.normal(size=(3, 10))
    s = _values(feature_mahalanobis([torch.from_numpy(wide_train)], [torch.from_numpy(wide)]))
    report.hint(report.ok(bool(torch.isfinite(s).all() and (s >= 0).all()),
                          "more dimensions (10) than training images (6): finite and non-negative scores",
                          f"got {s.tolist()}"),
                "the sample covariance is singular when d > N: Ledoit-Wolf shrinkage makes it invertible")


# ------------------------------------------------------------------ 2.3: the error map


@check("2.3", "the pixel error map")
def error_maps(report: Report, error_maps: Callable[..., torch.Tensor]) -> None:
    """A hand-computed pixel, perfect and uniform reconstructions, and what smoothing keeps."""
    images = torch.zeros(1, 3, 2, 2)
    recon = images.clone()
    recon[0, :, 0, 0] = torch.tensor([0.1, -0.2, 0.3])
    kept = recon.clone()
    out = error_maps(images, recon)
    if not report.ok(isinstance(out, torch.Tensor) and tuple(out.shape) == (1, 1, 2, 2),
                     "one map per image with one channel, shape (N, 1, H, W)",
                     f"got {type(out).__name__} {tuple(getattr(out, 'shape', ()))}"):
        return
    expected = torch.zeros(1, 1, 2, 2)
    expected[0, 0, 0, 0] = (0.01 + 0.04 + 0.09) / 3
    by_hand = "errors (0.1, -0.2, 0.3) in the three channels: (0.01 + 0.04 + 0.09) / 3"
    report.hint(report.close(out, expected, by_hand),
                "square each error, then take the mean over the colour channels (dim 1, keepdim=True)")
    report.ok(torch.equal(recon, kept), "leaves its inputs unchanged")
    report.close(error_maps(images, recon, sigma=0.0), expected, "sigma = 0 means no smoothing")
    with seeded():
        x = torch.rand(2, 3, 8, 8)
    report.close(error_maps(x, x.clone(), sigma=1.0), torch.zeros(2, 1, 8, 8),
                 "a perfect reconstruction maps to 0")

    uniform = error_maps(torch.zeros(1, 3, 12, 12), torch.full((1, 3, 12, 12), 0.2), sigma=1.5)
    report.hint(report.close(uniform, torch.full((1, 1, 12, 12), 0.04),
                             "smoothing keeps a uniform error uniform, borders included", atol=1e-6),
                "a normalised kernel (weights summing to 1) and reflected borders, as TF.gaussian_blur has")
    spike_recon = torch.zeros(1, 3, 21, 21)
    spike_recon[0, :, 10, 10] = 1.0
    black = torch.zeros_like(spike_recon)
    smooth1, smooth2 = (error_maps(black, spike_recon, sigma=s)[0, 0] for s in (1.0, 2.0))
    report.close(smooth1.sum(), error_maps(black, spike_recon).sum(),
                 "smoothing one pixel's error keeps its total", atol=1e-4)
    report.ok(bool(smooth1[10, 10] < 1 and smooth1[10, 11] > 0 and smooth1[9, 10] > 0),
              "and spreads it onto the neighbouring pixels", f"centre {smooth1[10, 10]:.3f}, "
              f"right {smooth1[10, 11]:.3f}, above {smooth1[9, 10]:.3f}")
    report.close(smooth1, smooth1.flip(0).flip(1).T, "the same way in every direction", atol=1e-6)
    report.ok(bool(smooth2[10, 10] < smooth1[10, 10]), "a wider sigma spreads it further",
              f"peak {smooth2[10, 10]:.3f} at sigma 2 against {smooth1[10, 10]:.3f} at sigma 1")


# -------------------------------------------------------------- 2.4: pixel-level AUROC


@check("2.4", "the pixel-level AUROC")
def pixel_auroc(report: Report, pixel_auroc: Callable[[Any, Any], float]) -> None:
    """Four hand-counted pixels, soft masks, pooling over images, perfect and useless maps."""
    maps = torch.tensor([0.1, 0.4, 0.35, 0.8]).view(1, 1, 2, 2)
    masks = torch.tensor([0, 0, 1, 1], dtype=torch.uint8).view(1, 1, 2, 2)
    auc = pixel_auroc(maps, masks)
    report.ok(isinstance(auc, float), "returns a Python float", f"got {type(auc).__name__}")
    report.close(auc, 0.75, "polyp pixels 0.35 and 0.8 against mucosa 0.1 and 0.4: 3 of 4 pairs won")
    soft = torch.tensor([0.2, 0.3, 0.7, 0.9]).view(1, 1, 2, 2)  # a JPEG mask is not exactly 0 or 1
    report.hint(report.close(pixel_auroc(maps, soft), 0.75, "mask values above 0.5 are polyp (JPEG masks)"),
                "binarise the masks with masks > 0.5 before scoring")
    report.close(pixel_auroc(masks.float(), masks), 1.0, "a map equal to the mask scores 1")
    report.close(pixel_auroc(1 - masks.float(), masks), 0.0, "the inverted map scores 0")
    report.close(pixel_auroc(torch.full((1, 1, 2, 2), 0.3), masks), 0.5, "a constant map scores 0.5")
    # Each image alone is perfect (AUROC 1), but image 2's mucosa errs more than image 1's polyp.
    two = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]]).view(2, 1, 2, 2)
    pooled = "pools the pixels of all images: 12 of 16 polyp-mucosa pairs won (each image alone: 1)"
    report.hint(report.close(pixel_auroc(two, torch.cat([masks, masks])), 0.75, pooled),
                "flatten every map and every mask into one long vector each, then one roc_auc_score")
