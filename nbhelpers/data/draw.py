"""A small vectorised drawing kit for the procedural stand-ins (CIFAR-10 objects, blood cells).

Shapes are drawn for a whole batch at once as soft coverage maps, so a stand-in of thousands of
images takes about a second.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def col(p: float | torch.Tensor) -> torch.Tensor:
    """A scalar or a per-image ``(N,)`` parameter, shaped to broadcast over ``(N, H, W)``."""
    return torch.as_tensor(p, dtype=torch.float32).view(-1, 1, 1)


class Frame:
    """Pixel coordinates of a batch of images, seen from each image's object.

    Coordinates run over [-1, 1] across the image; the object frame is shifted to ``(cv, cu)``,
    scaled, tilted and mirrored per image, so one shape recipe gives varied drawings. ``u`` points
    along the object (forward), ``v`` down. Shapes return a soft coverage in [0, 1] (one pixel of
    anti-aliasing), which keeps edges smooth at 28 or 32 pixels.
    """

    def __init__(self, size: int, cv=0.0, cu=0.0, scale=1.0, angle=0.0, flip=1.0) -> None:
        t = (torch.arange(size, dtype=torch.float32) + 0.5) * (2 / size) - 1
        dy, dx = t.view(1, -1, 1) - col(cv), t.view(1, 1, -1) - col(cu)
        cos, sin, scale = torch.cos(col(angle)), torch.sin(col(angle)), col(scale)
        self.u = (dx * cos + dy * sin) / scale * col(flip)
        self.v = (dy * cos - dx * sin) / scale
        self.px = 2 / size / scale  # one pixel, in object units

    def _local(self, cv, cu, angle) -> tuple[torch.Tensor, torch.Tensor]:
        du, dv = self.u - col(cu), self.v - col(cv)
        cos, sin = torch.cos(col(angle)), torch.sin(col(angle))
        return du * cos + dv * sin, dv * cos - du * sin

    def soft(self, sdf: torch.Tensor) -> torch.Tensor:
        """Coverage of a shape from its signed distance (negative inside)."""
        return (0.5 - sdf / self.px).clamp(0, 1)

    def ellipse(self, cv, cu, rv, ru, angle=0.0) -> torch.Tensor:
        """An ellipse centred at ``(cv, cu)`` with radii ``rv``, ``ru``, turned by ``angle``."""
        u, v = self._local(cv, cu, angle)
        rv, ru = col(rv), col(ru)
        return self.soft((torch.sqrt((u / ru) ** 2 + (v / rv) ** 2) - 1) * torch.minimum(rv, ru))

    def box(self, cv, cu, hv, hu, angle=0.0) -> torch.Tensor:
        """A rectangle centred at ``(cv, cu)`` with half-sizes ``hv``, ``hu``, turned by ``angle``."""
        u, v = self._local(cv, cu, angle)
        return self.soft(torch.maximum(u.abs() - col(hu), v.abs() - col(hv)))

    def polygon(self, points: Sequence[tuple[float, float]]) -> torch.Tensor:
        """A convex polygon through ``(v, u)`` corners given in either winding order."""
        pts = [(col(v), col(u)) for v, u in points]
        edges = list(zip(pts, pts[1:] + pts[:1], strict=True))
        # The shoelace sum's sign says which side of each edge is inside.
        winding = -torch.sign(sum((u1 - u0) * (v1 + v0) for (v0, u0), (v1, u1) in edges))
        sdf = None
        for (v0, u0), (v1, u1) in edges:
            length = torch.sqrt((u1 - u0) ** 2 + (v1 - v0) ** 2)
            side = ((self.u - u0) * (v1 - v0) - (self.v - v0) * (u1 - u0)) / length * winding
            sdf = side if sdf is None else torch.maximum(sdf, side)
        return self.soft(sdf)


def paint(img: torch.Tensor, cover: torch.Tensor, colour: torch.Tensor, alpha: float = 1.0) -> None:
    """Blend ``colour`` ((N, 3) or (3,)) into ``img`` ((N, 3, H, W)) where ``cover`` is 1."""
    img += (colour.view(-1, 3, 1, 1) - img) * (alpha * cover.unsqueeze(1))


def palette(
    g: torch.Generator, n: int, colours: Sequence[tuple[float, float, float]], jitter: float = 0.06
) -> torch.Tensor:
    """One colour per image: a random pick from ``colours`` (RGB in [0, 1]) plus a little noise."""
    base = torch.tensor(colours, dtype=torch.float32)[
        torch.randint(len(colours), (n,), generator=g)
    ]
    return (base + jitter * torch.randn(n, 3, generator=g)).clamp(0, 1)


def smooth_noise(
    g: torch.Generator, n: int, size: int, cells: int, channels: int = 1
) -> torch.Tensor:
    """Value noise in [0, 1], ``(N, channels, size, size)``: a ``cells``-square random grid, upsampled."""
    grid = torch.rand(n, channels, cells, cells, generator=g)
    return F.interpolate(grid, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def uniform(g: torch.Generator, n: int, low: float, high: float) -> torch.Tensor:
    """``n`` draws from U(low, high)."""
    return low + (high - low) * torch.rand(n, generator=g)
