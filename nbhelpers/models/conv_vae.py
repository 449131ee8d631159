"""The write-up's convolutional VAE (Kingma & Welling 2014), size-adaptive for 28x28 to 64x64 images.

Taken from the BloodMNIST write-up: the encoder is 2 strided convolutions followed by two linear
heads for mu and log sigma^2; the decoder is a linear layer followed by transposed convolutions;
ReLU in the hidden layers and a sigmoid output (pixels in [0, 1], scored with a Bernoulli/BCE
likelihood by ``nbhelpers.training.vae``). Sampling uses the reparameterisation trick
z = mu + sigma * eps. Follows the VAE convention of ``nbhelpers.training.vae``:
``model(x) -> (x_hat, mu, logvar)``, ``encode``, ``decode`` and ``latent_dim``.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvVAE(nn.Module):
    """x (N, channels, image_size, image_size) in [0, 1] -> (x_hat, mu, logvar)."""

    def __init__(self, channels: int = 3, image_size: int = 28, latent_dim: int = 32,
                 width: int = 32):
        super().__init__()
        if image_size % 4:
            raise ValueError(f"image_size={image_size}: two stride-2 layers need a multiple of 4.")
        self.latent_dim = latent_dim
        s, c = image_size // 4, width * 2  # the map after two halvings, and its channels
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(width, c, 4, 2, 1), nn.ReLU(),
            nn.Flatten(),
        )
        self.to_mu = nn.Linear(c * s * s, latent_dim)
        self.to_logvar = nn.Linear(c * s * s, latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, c * s * s), nn.ReLU(),
            nn.Unflatten(1, (c, s, s)),
            nn.ConvTranspose2d(c, width, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Sigmoid(),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior q(z|x) = N(mu, diag(exp(logvar)))."""
        h = self.encoder(x)
        return self.to_mu(h), self.to_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The Bernoulli means of p(x|z), in [0, 1]."""
        return self.decoder(z)

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps, so that gradients flow to mu and sigma through a fixed-noise draw."""
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar
