"""EndoVAE: a convolutional VAE of normal endoscopy images (Diamantis et al., IVMSP 2022).

The architecture follows the course write-up that re-implemented the paper for polyp detection
(write-up 001 of the series' references):

- encoder: four 4x4 convolutions with stride 2 and padding 1 (32, 64, 128, 256 channels, ReLU),
  which take a 96x96 image to a 256x6x6 map, flattened into two linear heads ``fc_mu`` and
  ``fc_logvar`` for the Gaussian posterior q(z|x) = N(mu, diag(exp(logvar)));
- decoder: the mirror image, a linear layer (with ReLU) back to 256x6x6 and four 4x4 transposed
  convolutions with stride 2 (128, 64, 32, 3 channels), ReLU between them and a sigmoid at the
  end, so that pixels lie in [0, 1] for both the BCE and the MSE reconstruction loss;
- latent dimension 128 (a knob: the ablation tries 64 and 256);
- no normalisation layers, as in the write-up: the model stays a plain VAE whose per-image
  encoding does not depend on the rest of the batch, which the per-image anomaly scores need.

Convention shared with every VAE in ``nbhelpers`` (see ``nbhelpers.training.vae``): ``forward``
returns ``(x_hat, mu, logvar)`` with x_hat decoded from a reparameterised sample, with ``encode``
and ``decode`` usable on their own (the anomaly scores decode the mean, see ``nbhelpers.vae_anomaly``).
"""

from __future__ import annotations

import torch
from torch import nn

WIDTHS = (32, 64, 128, 256)


def _downsampling(channels: int, widths: tuple[int, ...]) -> list[nn.Module]:
    """4x4 stride-2 convolutions with ReLU, from ``channels`` through ``widths``: each halves the side."""
    layers = []
    for w in widths:
        layers += [nn.Conv2d(channels, w, 4, 2, 1), nn.ReLU(inplace=True)]
        channels = w
    return layers


def _upsampling(channels: int, widths: tuple[int, ...]) -> list[nn.Module]:
    """The mirror: 4x4 stride-2 transposed convolutions with ReLU, a sigmoid after the last (it outputs pixels)."""
    layers = []
    for w in widths:
        layers += [nn.ConvTranspose2d(channels, w, 4, 2, 1), nn.ReLU(inplace=True)]
        channels = w
    layers[-1] = nn.Sigmoid()
    return layers


class EndoVAE(nn.Module):
    """images (N, channels, image_size, image_size) in [0, 1] -> (x_hat, mu, logvar)."""

    def __init__(self, latent_dim: int = 128, channels: int = 3, image_size: int = 96):
        super().__init__()
        if image_size % 16:
            raise ValueError(f"image_size={image_size}: four stride-2 convs need a multiple of 16.")
        self.latent_dim = latent_dim
        side = image_size // 16  # 96 -> 6
        map_shape = (WIDTHS[-1], side, side)
        flat = WIDTHS[-1] * side * side

        self.encoder = nn.Sequential(*_downsampling(channels, WIDTHS), nn.Flatten())
        self.fc_mu = nn.Linear(flat, latent_dim)
        self.fc_logvar = nn.Linear(flat, latent_dim)

        self.decoder = nn.Sequential(nn.Linear(latent_dim, flat), nn.ReLU(inplace=True), nn.Unflatten(1, map_shape),
                                     *_upsampling(WIDTHS[-1], (*reversed(WIDTHS[:-1]), channels)))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior's mean and log-variance, each (N, latent_dim)."""
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent codes (N, latent_dim) -> images in [0, 1]."""
        return self.decoder(z)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps with eps ~ N(0, I): the sample becomes differentiable in mu and sigma."""
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


class SpatialEndoVAE(nn.Module):
    """images (N, channels, image_size, image_size) in [0, 1] -> (x_hat, mu, logvar): a latent *map*.

    EndoVAE squeezes a whole frame into one vector, so its decoder must redraw every fold and vessel
    from ``latent_dim`` global numbers and can only afford a blurred average. Here the code keeps
    its layout, as in the spatial-bottleneck autoencoders that Baur, Denner, Wiestler, Navab &
    Albarqouni compare for anomaly segmentation (Medical Image Analysis 2021): EndoVAE's first three
    convolutions (32, 64, 128 channels, 4x4, stride 2) take a 96x96 image to a 12x12 map, a 1x1
    convolution gives ``latent_channels`` means and log-variances at each position, and the decoder
    mirrors it (a 1x1 convolution back to 128 channels, three transposed convolutions, a sigmoid).
    ``mu`` and ``logvar`` come flattened, (N, latent_channels * 12 * 12), so every VAE helper and
    score in ``nbhelpers`` applies unchanged; ``decode`` takes that shape back.
    """

    def __init__(self, latent_channels: int = 8, channels: int = 3, image_size: int = 96):
        super().__init__()
        if image_size % 8:
            raise ValueError(f"image_size={image_size}: three stride-2 convs need a multiple of 8.")
        self.side, self.latent_channels = image_size // 8, latent_channels
        self.latent_dim = latent_channels * self.side ** 2
        c = WIDTHS[2]
        self.encoder = nn.Sequential(*_downsampling(channels, WIDTHS[:3]))
        self.head = nn.Conv2d(c, 2 * latent_channels, 1)  # mu and logvar at every position
        self.decoder = nn.Sequential(nn.Conv2d(latent_channels, c, 1), nn.ReLU(inplace=True),
                                     *_upsampling(c, (*reversed(WIDTHS[:2]), channels)))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior's mean and log-variance, each (N, latent_channels * side * side)."""
        mu, logvar = self.head(self.encoder(x)).chunk(2, dim=1)
        return mu.flatten(1), logvar.flatten(1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Flattened latent maps (N, latent_dim) -> images in [0, 1]."""
        return self.decoder(z.reshape(len(z), self.latent_channels, self.side, self.side))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        return self.decode(EndoVAE.reparameterize(mu, logvar)), mu, logvar
