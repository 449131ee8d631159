"""A small ResNet classifier (He et al. 2016) for 28x28 to 64x64 images, sized for a CPU.

From the paper: basic blocks of two 3x3 convolutions with BatchNorm and an identity shortcut
(a 1x1 strided projection where the shape changes, option B), a stride-2 first block in every
stage after the first that doubles the width, global average pooling and one linear layer.
Unlike the ImageNet ResNets there is no 7x7 stem or max-pool: at 28x28 they would throw away
most of the image, as in the paper's CIFAR networks. ``features(x)`` returns the pooled
penultimate activations, used for classifier-feature Fréchet distances.
"""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    """relu(x + F(x)), F = conv-bn-relu-conv-bn; a 1x1 projection when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out),
        )
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class SmallResNet(nn.Module):
    """images (N, in_channels, H, W) -> logits (N, n_classes); ``features`` -> (N, width * 2**(S-1))."""

    def __init__(self, in_channels: int = 3, n_classes: int = 10, width: int = 32,
                 blocks: tuple[int, ...] = (2, 2, 2)):
        super().__init__()
        layers = [nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
                  nn.ReLU(True)]
        c = width
        for stage, n in enumerate(blocks):
            c_out = width * 2 ** stage
            for i in range(n):
                layers.append(BasicBlock(c, c_out, stride=2 if stage > 0 and i == 0 else 1))
                c = c_out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(c, n_classes)
        self.feature_dim = c

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The globally pooled penultimate activations (N, feature_dim)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))
