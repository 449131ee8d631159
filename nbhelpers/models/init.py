"""Weight initialisers shared by the model families."""

from __future__ import annotations

from torch import nn


def init_dcgan_weights(module: nn.Module) -> None:
    """Radford et al. 2016: conv and linear weights from N(0, 0.02), BatchNorm scales from N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)) and module.affine:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
