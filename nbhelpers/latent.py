"""Paths through a latent space: linear and spherical interpolation."""

from __future__ import annotations

import torch


def lerp(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps`` points on the straight line from ``a`` to ``b``, both included."""
    t = torch.linspace(0, 1, steps, dtype=a.dtype, device=a.device).view(-1, *([1] * a.dim()))
    return (1 - t) * a + t * b


def slerp(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985), which White (2016) recommends for Gaussian latents.

    A straight line between two Gaussian samples passes through low-norm points the generator
    rarely saw in training; the great-circle path keeps the norm typical. The norm itself is
    interpolated linearly, so the endpoints are exactly ``a`` and ``b``.
    """
    na, nb = a.norm(), b.norm()
    ua, ub = a / na, b / nb
    omega = torch.arccos((ua * ub).sum().clamp(-1.0, 1.0))
    if omega.abs() < 1e-4:  # (anti-)parallel within rounding: the sphere's path is the straight one
        return lerp(a, b, steps)
    t = torch.linspace(0, 1, steps, dtype=a.dtype, device=a.device).view(-1, *([1] * a.dim()))
    direction = (torch.sin((1 - t) * omega) * ua + torch.sin(t * omega) * ub) / torch.sin(omega)
    return direction * ((1 - t) * na + t * nb)
