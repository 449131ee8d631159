"""Fully-connected GAN for 28x28 digits (Goodfellow et al. 2014, "Generative Adversarial Nets").

The layout follows PyTorch-GAN's ``gan.py``, the usual modern reading of the 2014 MLP GAN:

- generator: z (standard normal, ``latent_dim=100``) -> 128 -> 256 -> 512 -> 1024 -> 784, each
  hidden layer Linear + BatchNorm + LeakyReLU(0.2), no BatchNorm on the first (it would
  normalise the raw noise away), and a tanh output so images live in [-1, 1];
- discriminator: 784 -> 512 -> 256 -> 1 with LeakyReLU(0.2).

Choices that differ from the sources, and why:

- the 2014 paper's discriminator used maxout units and dropout; LeakyReLU trains as well here
  and keeps the model one screen long;
- PyTorch-GAN passes ``0.8`` as BatchNorm's second positional argument, which is ``eps``, not the
  momentum it reads like; we keep PyTorch's default ``eps`` and momentum;
- the discriminator returns logits of shape (N,), not sigmoid probabilities, so the loss can use
  ``binary_cross_entropy_with_logits``, which is numerically stable where D saturates.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class Generator(nn.Module):
    """Maps noise ``z`` (N, latent_dim) to images (N, *image_shape) in [-1, 1]."""

    def __init__(
        self,
        latent_dim: int = 100,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        widths: tuple[int, ...] = (128, 256, 512, 1024),
    ):
        super().__init__()
        self.latent_dim = latent_dim
        self.image_shape = tuple(image_shape)
        layers: list[nn.Module] = []
        fan_in = latent_dim
        for i, width in enumerate(widths):
            layers.append(nn.Linear(fan_in, width))
            if i > 0:
                layers.append(nn.BatchNorm1d(width))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            fan_in = width
        layers += [nn.Linear(fan_in, math.prod(self.image_shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Generate a batch of images from a batch of noise vectors."""
        return self.net(z).view(len(z), *self.image_shape)


class Discriminator(nn.Module):
    """Scores images (N, *image_shape) in [-1, 1]; returns one real-vs-fake logit per image (N,)."""

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        widths: tuple[int, ...] = (512, 256),
    ):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        fan_in = math.prod(image_shape)
        for width in widths:
            layers += [nn.Linear(fan_in, width), nn.LeakyReLU(0.2, inplace=True)]
            fan_in = width
        layers.append(nn.Linear(fan_in, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One logit per image: positive means "looks real"."""
        return self.net(x).squeeze(1)
