"""PixelDA: generator, discriminator and task classifier (Bousmalis et al., CVPR 2017).

"Unsupervised Pixel-Level Domain Adaptation with Generative Adversarial Networks" translates
labelled source images (MNIST) into the style of an unlabelled target domain (MNIST-M) and trains
a classifier on the translations. Choices taken from the paper (section 4 and its figure 2) and
from the authors' released code (tensorflow/models, ``pixel_domain_adaptation``) where the paper
leaves a number open:

- **Generator** G(x, z): z is a 10-d vector drawn from U(-1, 1)
  (``nbhelpers.latent.sample_noise(n, 10, uniform=True)``); a fully connected layer maps it
  to one extra image-sized channel that is concatenated to the source image. Then a 3x3
  convolution with ReLU, residual blocks (3x3 conv, BatchNorm, ReLU, 3x3 conv, BatchNorm, plus
  the input) that keep the resolution, and a 1x1 convolution with tanh: outputs lie in [-1, 1].
  The paper uses 64 channels and 6 blocks.
- **Discriminator** D(x): a stride-1 3x3 convolution, then stride-2 3x3 convolutions that double
  the channels (64 in the first layer) until the map is 4x4, BatchNorm after all but the first,
  LeakyReLU(0.2), and one fully connected logit. Gaussian noise (std 0.2) is added to the input of
  every layer and dropout (keep probability 0.9) follows every hidden layer, during training only:
  both keep D from winning too early on MNIST-M's photographic textures.
- **Task classifier** T(x): the MNIST network of Ganin & Lempitsky (2015) that the paper uses to
  compare with earlier domain-adaptation work: 5x5 conv 32, max-pool, 5x5 conv 48, max-pool,
  FC 100, FC 100, FC 10. ``features`` gives the 100-d penultimate activations.

Lightened for a CPU budget (constructor knobs): ``width`` and ``n_blocks`` of G (32 and 4 run
about 3x faster than the paper's 64 and 6) and ``width`` of D. Images are 32x32 RGB in [-1, 1]:
MNIST padded to 32x32 as in Ganin's MNIST-M release and repeated over three channels
(``nbhelpers.data.mnistm.prepare_digits``).
"""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus the input: the resolution and the channels stay the same."""

    def __init__(self, width: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(width, width, 3, 1, 1), nn.BatchNorm2d(width), nn.ReLU(True),
            nn.Conv2d(width, width, 3, 1, 1), nn.BatchNorm2d(width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class Generator(nn.Module):
    """(source images (N, C, H, W) in [-1, 1], z (N, latent_dim)) -> adapted images (N, out_channels, H, W)."""

    def __init__(self, channels: int = 3, out_channels: int = 3, image_size: int = 32,
                 latent_dim: int = 10, width: int = 64, n_blocks: int = 6):
        super().__init__()
        self.latent_dim, self.image_size = latent_dim, image_size
        # The released code normalises the projected noise with BatchNorm before its ReLU.
        self.noise = nn.Sequential(nn.Linear(latent_dim, image_size * image_size),
                                   nn.BatchNorm1d(image_size * image_size), nn.ReLU(True))
        self.head = nn.Sequential(nn.Conv2d(channels + 1, width, 3, 1, 1), nn.ReLU(True))
        self.blocks = nn.Sequential(*[ResidualBlock(width) for _ in range(n_blocks)])
        self.out = nn.Sequential(nn.Conv2d(width, out_channels, 1), nn.Tanh())

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ValueError(f"expected {self.image_size}x{self.image_size} images, got {tuple(x.shape)}.")
        noise = self.noise(z).view(-1, 1, self.image_size, self.image_size)
        return self.out(self.blocks(self.head(torch.cat([x, noise], dim=1))))


class GaussianNoise(nn.Module):
    """Adds N(0, std^2) noise in training mode; the identity in eval mode."""

    def __init__(self, std: float):
        super().__init__()
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.std == 0:
            return x
        # Drawn in the default layout: on the CPU, randn_like of a channels_last tensor is ~3x slower.
        return x + self.std * torch.randn(x.shape, dtype=x.dtype, device=x.device)


class Discriminator(nn.Module):
    """images (N, channels, image_size, image_size) in [-1, 1] -> real/fake logits (N,)."""

    def __init__(self, channels: int = 3, image_size: int = 32, width: int = 64,
                 noise_std: float = 0.2, dropout: float = 0.1):
        super().__init__()
        layers = [GaussianNoise(noise_std), nn.Conv2d(channels, width, 3, 1, 1),
                  nn.LeakyReLU(0.2, True), nn.Dropout(dropout)]
        c, size = width, image_size
        while size > 4:  # stride-2 convolutions until the map is 4x4, doubling the channels
            layers += [GaussianNoise(noise_std), nn.Conv2d(c, 2 * c, 3, 2, 1), nn.BatchNorm2d(2 * c),
                       nn.LeakyReLU(0.2, True), nn.Dropout(dropout)]
            c, size = 2 * c, (size + 1) // 2
        self.features = nn.Sequential(*layers)
        self.logit = nn.Linear(c * size * size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit(self.features(x).flatten(1)).squeeze(1)


class TaskClassifier(nn.Module):
    """images (N, channels, 32, 32) -> class logits (N, n_classes); ``features`` gives the 100-d layer."""

    def __init__(self, channels: int = 3, image_size: int = 32, n_classes: int = 10):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(channels, 32, 5, 1, 2), nn.ReLU(True), nn.MaxPool2d(2),
            nn.Conv2d(32, 48, 5, 1, 2), nn.ReLU(True), nn.MaxPool2d(2),
        )
        self.fc = nn.Sequential(nn.Linear(48 * (image_size // 4) ** 2, 100), nn.ReLU(True),
                                nn.Linear(100, 100), nn.ReLU(True))
        self.classify = nn.Linear(100, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate (second 100-unit) activations, for t-SNE of the two domains."""
        return self.fc(self.conv(x).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))
