"""The GAN step (Goodfellow et al. 2014), in the non-saturating form DCGAN uses (Radford et al. 2016).

The discriminator D outputs a logit; binary cross-entropy with logits is numerically safer than a
sigmoid followed by BCE. One step:

1. **D update**: maximise log D(x) + log(1 - D(G(z))), i.e. minimise BCE(D(x), 1) + BCE(D(G(z)), 0).
   G(z) is detached: this update must not change the generator.
2. **G update**: the non-saturating loss, minimise BCE(D(G(z)), 1) = -log D(G(z)), whose gradient
   stays strong while D still wins easily (the minimax form's -log(1 - D(G(z))) vanishes there).
"""

from __future__ import annotations

from itertools import repeat

import torch
import torch.nn.functional as F
from torch import nn

from nbhelpers.training.device import module_device
from nbhelpers.training.inference import eval_batches


def sample_noise(n: int, latent_dim: int, *, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """Standard normal latent vectors ``(n, latent_dim)``; pass a seeded generator for a fixed batch."""
    z = torch.randn(n, latent_dim, generator=generator)
    return z.to(device) if device is not None else z




def call(net: nn.Module, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """``net(x)``, or ``net(x, labels)`` for a conditional network."""
    return net(x) if labels is None else net(x, labels)


def gan_step(G: nn.Module, D: nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
             real: torch.Tensor, *, latent_dim: int, labels: torch.Tensor | None = None) -> dict[str, float]:
    """One D update then one G update; with ``labels`` both networks are conditioned (cGAN)."""
    n = real.shape[0]
    z = sample_noise(n, latent_dim, device=real.device)
    fake = call(G, z, labels)

    opt_d.zero_grad(set_to_none=True)
    logits_real = call(D, real, labels)
    logits_fake = call(D, fake.detach(), labels)
    loss_d = (F.binary_cross_entropy_with_logits(logits_real, torch.ones_like(logits_real))
              + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake)))
    loss_d.backward()
    opt_d.step()

    opt_g.zero_grad(set_to_none=True)
    logits_gen = call(D, fake, labels)
    loss_g = F.binary_cross_entropy_with_logits(logits_gen, torch.ones_like(logits_gen))
    loss_g.backward()
    opt_g.step()

    return {
        "loss_d": loss_d.item(),
        "loss_g": loss_g.item(),
        "d_real": torch.sigmoid(logits_real).mean().item(),  # D(x): 1 means "sure it is real"
        "d_fake": torch.sigmoid(logits_fake).mean().item(),  # D(G(z)) before the G update
    }


@torch.no_grad()
def generate(G: nn.Module, z: torch.Tensor, labels: torch.Tensor | None = None,
             batch_size: int = 500) -> torch.Tensor:
    """Samples of ``G`` for the latents ``z`` (and labels), in eval mode, on the CPU.

    Eval mode makes BatchNorm use its running statistics, so a sample does not depend on the
    other latents in its batch. Under ``NBH_MAX_EVAL_ITEMS`` only a few latents are used.
    """
    device = module_device(G)
    was_training = G.training
    G.eval()
    chunks = []
    label_batches = repeat(None) if labels is None else eval_batches(labels, batch_size)
    for zb, lb in zip(eval_batches(z, batch_size), label_batches):
        chunks.append(call(G, zb.to(device), None if lb is None else lb.to(device)).cpu())
    G.train(was_training)
    return torch.cat(chunks)
