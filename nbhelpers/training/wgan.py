"""The WGAN-GP step (Gulrajani et al. 2017): a critic trained to estimate the Wasserstein-1 distance.

The critic C maximises E[C(x)] - E[C(G(z))] over 1-Lipschitz functions; instead of clipping
weights, a penalty lambda * (||grad C(x_hat)||_2 - 1)^2 on random interpolates x_hat between
real and fake samples keeps its gradient norm near 1. The paper's defaults: lambda = 10,
n_critic = 5 critic updates per generator update, Adam(1e-4, betas=(0, 0.9)), and no BatchNorm
in the critic (the penalty is per sample).

How the critic ratio is honoured here: one call of :func:`wgan_gp_step` is one generator update.
It splits the batch it is given into ``n_critic`` chunks and makes one critic update on each, with
fresh noise, then one generator update. So give ``fit`` a batch of ``n_critic * m`` images for
critic batches of ``m``; every real image is still seen once per epoch, and an "epoch" holds
``n_critic`` times fewer generator updates than with the DCGAN step.
"""

from __future__ import annotations

import torch
from torch import nn

from nbhelpers.training.gan import call, sample_noise


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     labels: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of (||grad_x C(x_hat)||_2 - 1)^2 over x_hat = eps * real + (1 - eps) * fake, eps ~ U[0, 1]."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    x_hat = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
    # create_graph: the penalty is itself differentiated when the critic is updated.
    (grad,) = torch.autograd.grad(call(critic, x_hat, labels).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def wgan_gp_step(G: nn.Module, critic: nn.Module, opt_g: torch.optim.Optimizer,
                 opt_c: torch.optim.Optimizer, real: torch.Tensor, *, latent_dim: int,
                 n_critic: int, gp_weight: float = 10.0,
                 labels: torch.Tensor | None = None) -> dict[str, float]:
    """``n_critic`` critic updates on chunks of ``real``, then one generator update.

    Returns floats: loss_c, loss_g, gp, and ``wasserstein``, the critic's estimate
    E[C(x)] - E[C(G(z))] averaged over the critic updates (it should fall as G improves).
    """
    if len(real) < n_critic:
        raise ValueError(f"a batch of {len(real)} cannot be split into n_critic={n_critic} chunks.")
    # tensor_split (unlike chunk) always gives exactly n_critic pieces, sizes differing by at most 1.
    chunks = real.tensor_split(n_critic)
    label_chunks = labels.tensor_split(n_critic) if labels is not None else [None] * n_critic
    logs = {"loss_c": 0.0, "gp": 0.0, "wasserstein": 0.0}
    for x, y in zip(chunks, label_chunks, strict=True):
        with torch.no_grad():
            fake = call(G, sample_noise(len(x), latent_dim, device=x.device), y)
        w_estimate = call(critic, x, y).mean() - call(critic, fake, y).mean()
        gp = gradient_penalty(critic, x, fake, y)
        loss_c = -w_estimate + gp_weight * gp
        opt_c.zero_grad(set_to_none=True)
        loss_c.backward()
        opt_c.step()
        for key, value in (("loss_c", loss_c), ("gp", gp), ("wasserstein", w_estimate)):
            logs[key] += value.item() / len(chunks)

    y = label_chunks[0]
    z = sample_noise(len(chunks[0]), latent_dim, device=real.device)
    loss_g = -call(critic, call(G, z, y), y).mean()
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    return {**logs, "loss_g": loss_g.item()}
