"""The three autoencoders of the TensorFlow tutorial "Intro to Autoencoders", in PyTorch.

All three map inputs in [0, 1] to reconstructions in [0, 1] (a sigmoid output), so one
reconstruction loss (:mod:`nbhelpers.training.autoencoder`) trains each of them; the denoiser's
step, noisy input against clean target, is notebook 04's exercise 4.1.
"""

from __future__ import annotations

import torch
from torch import nn


class DenseAutoencoder(nn.Module):
    """The tutorial's basic autoencoder: flatten, one ReLU layer to the code, one sigmoid layer back.

    Choices from the tutorial: a single dense layer each way, ``latent_dim = 64`` (a 12x
    compression of a 28x28 image), ReLU on the code, a sigmoid output, trained with MSE and Adam.
    """

    def __init__(self, image_shape: tuple[int, int, int] = (1, 28, 28), latent_dim: int = 64):
        super().__init__()
        self.image_shape = image_shape
        self.latent_dim = latent_dim
        n_pixels = image_shape[0] * image_shape[1] * image_shape[2]
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(n_pixels, latent_dim), nn.ReLU())
        self.decoder = nn.Sequential(nn.Linear(latent_dim, n_pixels), nn.Sigmoid())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) to codes (N, latent_dim)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes (N, latent_dim) to images (N, C, H, W) in [0, 1]."""
        return self.decoder(z).view(-1, *self.image_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class DenoisingConvAutoencoder(nn.Module):
    """The tutorial's denoising autoencoder: two strided convolutions down, two transposed ones up.

    Choices from the tutorial: 3x3 kernels, stride 2, 16 then 8 channels (a 8x7x7 code for a
    28x28 image), ReLU, 'same' padding (padding 1 here, plus ``output_padding=1`` so each
    transposed convolution exactly doubles the size), and a final 3x3 convolution with a sigmoid.
    """

    def __init__(self, channels: int = 1):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 8, 3, stride=2, padding=1), nn.ReLU(),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(8, 8, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(8, 16, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.Conv2d(16, channels, 3, padding=1), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class ECGAutoencoder(nn.Module):
    """The tutorial's anomaly detector for ECG5000 beats: dense 140 -> 32 -> 16 -> 8 and back.

    Choices from the tutorial: ReLU layers of 32, 16 and 8 units, the mirror image for the
    decoder, and a sigmoid output, because the beats are min-max scaled to [0, 1]. Trained with
    MAE on normal beats only, so a large reconstruction error flags an abnormal beat.
    """

    def __init__(self, n_samples: int = 140, hidden: tuple[int, ...] = (32, 16, 8)):
        super().__init__()
        widths = (n_samples, *hidden)
        encoder: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            encoder += [nn.Linear(w_in, w_out), nn.ReLU()]
        back = widths[::-1]
        decoder: list[nn.Module] = []
        for w_in, w_out in zip(back[:-1], back[1:]):
            decoder += [nn.Linear(w_in, w_out), nn.ReLU()]
        decoder[-1] = nn.Sigmoid()  # the output layer: scaled beats live in [0, 1]
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
