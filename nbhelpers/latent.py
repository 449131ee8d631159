"""Latent codes: drawing them, and the straight path between two of them.

Spherical interpolation (``slerp``) is an exercise of notebook 05; later notebooks take the
student's version with ``nbhelpers.editions.taught("05", "slerp")``.
"""

from __future__ import annotations

import torch


def sample_noise(n: int, latent_dim: int, *, uniform: bool = False,
                 generator: torch.Generator | None = None,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """Latent vectors ``(n, latent_dim)``: standard normal, or U(-1, 1) with ``uniform`` (PixelDA's noise).

    The draw is made on the CPU, where a seeded ``generator`` lives, then moved to ``device``:
    a fixed batch is then the same on every device.
    """
    if uniform:
        z = torch.rand(n, latent_dim, generator=generator) * 2 - 1
    else:
        z = torch.randn(n, latent_dim, generator=generator)
    return z.to(device) if device is not None else z


def lerp(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps`` points on the straight line from ``a`` to ``b``, both included."""
    t = torch.linspace(0, 1, steps, dtype=a.dtype, device=a.device).view(-1, *([1] * a.dim()))
    return (1 - t) * a + t * b
