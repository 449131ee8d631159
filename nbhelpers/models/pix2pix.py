"""pix2pix (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial Networks").

Choices from the paper (section 3.2 and the appendix):

- 4x4 convolutions with stride 2 throughout; LeakyReLU(0.2) in the encoder and in D, ReLU in
  the decoder; no normalisation on the first layer of the encoder and of D, nor on the
  innermost (1x1) layer of the encoder;
- dropout 0.5 on the first three decoder layers, the generator's only source of noise;
- a tanh output, so images live in [-1, 1];
- weights drawn from N(0, 0.02) (the DCGAN initialisation, from ``models.init``).

One deliberate difference: the paper uses BatchNorm with batch size 1 and, at test time, the
test batch's own statistics, which is exactly instance normalisation. We write it as
``InstanceNorm2d(affine=True)``, so a model trained on batches of 4 (the cpu profile) behaves the
same at evaluation, one image at a time.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nbhelpers.models.init import init_dcgan_weights


def _down(c_in: int, c_out: int, *, norm: bool = True, stride: int = 2) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 4, stride, 1, bias=not norm)]
    if norm:
        layers.append(nn.InstanceNorm2d(c_out, affine=True))
    layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def _up(c_in: int, c_out: int, *, dropout: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
        nn.InstanceNorm2d(c_out, affine=True),
    ]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class UNetGenerator(nn.Module):
    """The U-Net generator: an encoder down to 1x1, a mirrored decoder, skips between mirrors.

    The paper's encoder for 256x256 is C64-C128-C256-C512-C512-C512-C512-C512 (eight halvings
    down to 1x1). Here the number of halvings is log2(size), with the channel count doubling
    from ``base`` up to a cap of 512, so a 128x128 model drops one C512 level and keeps the rest.
    Decoder layer i is concatenated with encoder layer n-1-i, which hands the fine detail
    (edges, window corners) straight to the output.
    """

    def __init__(self, size: int = 256, in_channels: int = 3, out_channels: int = 3,
                 base: int = 64, max_channels: int = 512, dropout: float = 0.5):
        super().__init__()
        depth = round(math.log2(size))
        if size < 16 or 2**depth != size:
            raise ValueError(f"UNetGenerator needs a power-of-two size of at least 16, not {size}.")
        self.size = size
        chans = [min(base * 2**i, max_channels) for i in range(depth)]
        self.down = nn.ModuleList(
            _down(c_in, c_out, norm=0 < i < depth - 1)
            for i, (c_in, c_out) in enumerate(zip([in_channels, *chans[:-1]], chans))
        )
        # Up layer j takes level k = depth-1-j (alone for j = 0, else concatenated with its skip)
        # to level k-1; the paper's dropout sits on the three innermost up layers.
        self.up = nn.ModuleList(
            _up(chans[k] * (1 if k == depth - 1 else 2), chans[k - 1], dropout=dropout if j < 3 else 0.0)
            for j, k in enumerate(range(depth - 1, 0, -1))
        )
        self.last = nn.Sequential(nn.ConvTranspose2d(2 * chans[0], out_channels, 4, 2, 1), nn.Tanh())
        self.apply(init_dcgan_weights)  # N(0, 0.02), the paper's init too

    def skips(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's outputs, from the finest (size/2) to the 1x1 bottleneck."""
        if x.shape[-2:] != (self.size, self.size):
            raise ValueError(f"this generator was built for {self.size}x{self.size} inputs, "
                             f"got {tuple(x.shape[-2:])}; build it with size={x.shape[-1]}.")
        out = []
        for layer in self.down:
            x = layer(x)
            out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = self.skips(x)
        h = skips[-1]
        for layer, skip in zip(self.up, reversed(skips[:-1])):
            h = torch.cat([layer(h), skip], dim=1)
        return self.last(h)


class PatchDiscriminator(nn.Module):
    """The 70x70 PatchGAN: a conditional D that scores overlapping patches of the (input, output) pair.

    From the paper: C64-C128-C256-C512 then a 1-channel convolution, the first three with stride
    2 and the last two with stride 1, which gives each output logit a 70x70 receptive field.
    It sees the input image concatenated with the real or generated output, so it judges whether
    the output fits the input. On 256x256 images it returns 30x30 logits (14x14 on 128x128).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, base: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            _down(in_channels + out_channels, base, norm=False),
            _down(base, base * 2),
            _down(base * 2, base * 4),
            _down(base * 4, base * 8, stride=1),
            nn.Conv2d(base * 8, 1, 4, 1, 1),
        )
        self.apply(init_dcgan_weights)  # N(0, 0.02), the paper's init too

    def forward(self, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        """Logits (N, 1, H', W'), one per 70x70 patch: real pair vs generated pair."""
        return self.net(torch.cat([inputs, outputs], dim=1))
