"""The WGAN-GP step (Gulrajani et al. 2017): a critic that estimates the Wasserstein-1 distance.

The critic C maximises E[C(x)] - E[C(G(z))] over 1-Lipschitz functions; instead of clipping
weights, a penalty lambda * (||grad C(x_hat)||_2 - 1)^2 on random interpolates x_hat between
real and fake samples keeps its gradient norm near 1. The paper's defaults: lambda = 10,
n_critic = 5 critic updates per generator update, Adam(1e-4, betas=(0, 0.9)), and no BatchNorm
in the critic (the penalty is per sample).

The losses and the penalty are the lesson: notebook 03 writes them (its exercises) and passes
them in. This module holds only the schedule of updates around them.

How the critic ratio is honoured here: one call of :func:`wgan_gp_step` is one generator update.
It splits the batch it is given into ``n_critic`` chunks and makes one critic update on each, with
fresh noise, then one generator update. So give ``fit`` a batch of ``n_critic * m`` images for
critic batches of ``m``; every real image is still seen once per epoch, and an "epoch" holds
``n_critic`` times fewer generator updates than with the DCGAN step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nbhelpers.latent import sample_noise
from nbhelpers.training.gan import call

# critic_loss(critic, real, fake, *, gp_weight, labels) -> (loss_c, wasserstein estimate, penalty)
CriticLoss = Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
# generator_loss(critic, fake, labels) -> loss_g
GeneratorLoss = Callable[..., torch.Tensor]


def wgan_gp_step(G: nn.Module, critic: nn.Module, opt_g: torch.optim.Optimizer,
                 opt_c: torch.optim.Optimizer, real: torch.Tensor, *, latent_dim: int,
                 n_critic: int, critic_loss: CriticLoss, generator_loss: GeneratorLoss,
                 gp_weight: float = 10.0, labels: torch.Tensor | None = None) -> dict[str, float]:
    """``n_critic`` critic updates on chunks of ``real``, then one generator update.

    ``critic_loss`` and ``generator_loss`` are the WGAN-GP losses (notebook 03's exercises).
    Returns floats: loss_c, loss_g, gp, and ``wasserstein``, the critic's estimate
    E[C(x)] - E[C(G(z))] averaged over the critic updates (it should fall as G improves).
    """
    if len(real) < n_critic:
        raise ValueError(f"a batch of {len(real)} cannot be split into n_critic={n_critic} chunks.")
    # tensor_split (unlike chunk) always gives n_critic pieces, sizes differing by at most 1.
    chunks = real.tensor_split(n_critic)
    label_chunks = labels.tensor_split(n_critic) if labels is not None else [None] * n_critic
    logs = {"loss_c": 0.0, "gp": 0.0, "wasserstein": 0.0}
    for x, y in zip(chunks, label_chunks, strict=True):
        with torch.no_grad():
            fake = call(G, sample_noise(len(x), latent_dim, device=x.device), y)
        loss_c, w_estimate, gp = critic_loss(critic, x, fake, gp_weight=gp_weight, labels=y)
        opt_c.zero_grad(set_to_none=True)
        loss_c.backward()
        opt_c.step()
        for key, value in (("loss_c", loss_c), ("gp", gp), ("wasserstein", w_estimate)):
            logs[key] += torch.as_tensor(value).item() / len(chunks)  # the losses may log floats

    y = label_chunks[0]
    z = sample_noise(len(chunks[0]), latent_dim, device=real.device)
    loss_g = generator_loss(critic, call(G, z, y), labels=y)
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    return {**logs, "loss_g": loss_g.item()}
