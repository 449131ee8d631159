"""What the GAN steps share: calling a network with or without labels, and sampling a generator.

The GAN step itself (Goodfellow et al. 2014, in the non-saturating form DCGAN uses, Radford et al.
2016) is exercise 5.1 of notebook 05; later notebooks take the student's version with
``nbhelpers.editions.taught("05", "gan_step")``.
"""

from __future__ import annotations

from itertools import repeat

import torch
from torch import nn

from nbhelpers.training.device import module_device
from nbhelpers.training.inference import eval_batches, evaluating


def call(net: nn.Module, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """``net(x)``, or ``net(x, labels)`` for a conditional network."""
    return net(x) if labels is None else net(x, labels)


def generate(G: nn.Module, z: torch.Tensor, labels: torch.Tensor | None = None,
             batch_size: int = 500) -> torch.Tensor:
    """Samples of ``G`` for the latents ``z`` (and labels), in eval mode, on the CPU.

    Eval mode makes BatchNorm use its running statistics, so a sample does not depend on the
    other latents in its batch. Under ``NBH_MAX_EVAL_ITEMS`` only a few latents are used.
    """
    device = module_device(G)
    label_batches = repeat(None) if labels is None else eval_batches(labels, batch_size)
    with evaluating(G):
        return torch.cat([call(G, zb.to(device), None if lb is None else lb.to(device)).cpu()
                          for zb, lb in zip(eval_batches(z, batch_size), label_batches)])
