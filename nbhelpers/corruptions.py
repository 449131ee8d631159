"""Corrupted digits for anomaly detection: Gaussian noise, occlusion, inversion and rotation.

Every function takes a batch (N, C, H, W) of floats in [0, 1] and returns a new batch of the same
shape, still in [0, 1], so the corrupted images go through the same model and score as clean ones.
The random ones draw from their own generator seeded by ``seed``: the same call gives the same
images, and the global RNG (and so the training that follows) is left untouched.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check(x: torch.Tensor) -> None:
    if x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"expected a float batch (N, C, H, W); got {x.dtype} of shape {tuple(x.shape)}")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(
            f"expected values in [0, 1]; got [{x.min().item():.3g}, {x.max().item():.3g}]. "
            "Fix: pass the images before any [-1, 1] normalisation."
        )


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def gaussian_noise(x: torch.Tensor, *, std: float = 0.3, seed: int = 0) -> torch.Tensor:
    """Add N(0, std^2) noise to every pixel and clip back to [0, 1]."""
    _check(x)
    noise = torch.randn(x.shape, generator=_generator(seed)).to(x)
    return (x + std * noise).clamp_(0, 1)


def occlusion(x: torch.Tensor, *, size: int = 10, value: float = 1.0, seed: int = 0) -> torch.Tensor:
    """Paint one ``size`` x ``size`` square of ``value`` at a random place in each image.

    The default is white: on a black background a black square would often hide nothing.
    """
    _check(x)
    n, _, h, w = x.shape
    if not 0 < size <= min(h, w):
        raise ValueError(f"occlusion size {size} must be between 1 and {min(h, w)}")
    g = _generator(seed)
    top = torch.randint(0, h - size + 1, (n,), generator=g)
    left = torch.randint(0, w - size + 1, (n,), generator=g)
    rows = torch.arange(h)[None, :, None]
    cols = torch.arange(w)[None, None, :]
    inside = ((rows >= top[:, None, None]) & (rows < (top + size)[:, None, None])
              & (cols >= left[:, None, None]) & (cols < (left + size)[:, None, None]))
    return x.masked_fill(inside[:, None].to(x.device), value)


def invert(x: torch.Tensor) -> torch.Tensor:
    """White background, black strokes: 1 - x."""
    _check(x)
    return 1 - x


def rotate(
    x: torch.Tensor, *, min_degrees: float = 60.0, max_degrees: float = 180.0, seed: int = 0
) -> torch.Tensor:
    """Rotate each image about its centre by a random angle of magnitude in [min, max] degrees.

    The sign is random too. Bilinear resampling mixes neighbouring pixels with weights summing to
    one and fills the corners with 0 (the background), so values stay in [0, 1]. Small angles are
    left out because a digit tilted by 20 degrees is still a normal digit. Square images only:
    ``affine_grid`` works in normalised coordinates, which would shear a non-square image.
    """
    _check(x)
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"rotate needs square images; got {tuple(x.shape[-2:])}")
    if not 0 <= min_degrees <= max_degrees:
        raise ValueError(f"need 0 <= min_degrees <= max_degrees; got {min_degrees}, {max_degrees}")
    g = _generator(seed)
    n = len(x)
    magnitude = min_degrees + (max_degrees - min_degrees) * torch.rand(n, generator=g)
    sign = torch.randint(0, 2, (n,), generator=g) * 2 - 1
    theta = torch.deg2rad(magnitude * sign)
    cos, sin = torch.cos(theta), torch.sin(theta)
    zero = torch.zeros(n)
    affine = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(affine.to(x), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False).clamp_(0, 1)

