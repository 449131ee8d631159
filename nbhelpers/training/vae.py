"""The VAE objective (Kingma & Welling 2014) and its training step.

For an encoder q(z|x) = N(mu(x), diag sigma^2(x)) and a decoder p(x|z), the evidence lower bound is

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || N(0, I)),

and the loss is its negative: a reconstruction term plus beta times the KL term (beta = 1 is the
true ELBO; beta-VAE, Higgins et al. 2017, trades one for the other). The KL term has a closed form.

Models follow one convention: ``model(x) -> (x_hat, mu, logvar)`` with ``x_hat`` in [0, 1],
``model.encode(x) -> (mu, logvar)``, ``model.decode(z) -> x_hat`` and ``model.latent_dim``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nbhelpers.training.inference import evaluating


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) per sample: -1/2 * sum(1 + log sigma^2 - mu^2 - sigma^2), in float32."""
    mu, logvar = mu.float(), logvar.float()  # exp of a bf16 log-variance (GPU autocast) loses digits
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).flatten(1).sum(1)


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    """Per-sample reconstruction loss summed over pixels: ``bce``, ``mse`` or ``sigma``.

    With ``bce`` and binary ``x`` this is -log p(x|z) in nats. ``mse``, the summed squared error,
    is the Gaussian -log p(x|z) with a fixed variance sigma^2 = 1/2, up to a constant. ``sigma`` is
    the Gaussian with the *optimal* shared variance of Rybkin, Daniilidis & Levine ("Simple and
    Effective VAE Training with Calibrated Decoders", ICML 2021): sigma^2 is the batch's mean squared
    error per pixel value (no gradient flows through it), and the loss per image is
    ``SSE / (2 sigma^2) + D/2 * log sigma^2`` over its D pixel values, up to a constant. As the
    reconstructions improve sigma shrinks, so detail keeps paying against the KL term instead of
    being priced at the fixed 1/2. It depends on the whole batch: use it to train, not as a
    per-image score. Computed in float32 also under ``fit``'s CUDA autocast: CUDA refuses
    ``binary_cross_entropy`` in autocast, and a bf16 sum over thousands of pixels loses digits.
    """
    if kind not in ("bce", "mse", "sigma"):
        raise ValueError(f"reconstruction loss must be 'bce', 'mse' or 'sigma', not {kind!r}")
    with torch.autocast("cuda", enabled=False):
        x_hat, x = x_hat.float(), x.float()
        if kind == "bce":
            return F.binary_cross_entropy(x_hat.clamp(1e-6, 1 - 1e-6), x, reduction="none").flatten(1).sum(1)
        sse = F.mse_loss(x_hat, x, reduction="none").flatten(1).sum(1)
        if kind == "mse":
            return sse
        pixels = x[0].numel()
        variance = (sse.mean() / pixels).detach().clamp_min(1e-8)  # a perfect batch must not divide by 0
        return sse / (2 * variance) + 0.5 * pixels * variance.log()


def vae_loss(model: nn.Module, x: torch.Tensor, *, recon: str = "bce",
             beta: float = 1.0) -> dict[str, torch.Tensor]:
    """Per-sample loss terms: ``recon``, ``kl`` and ``loss = recon + beta * kl``."""
    x_hat, mu, logvar = model(x)
    r = reconstruction_loss(x_hat, x, recon)
    kl = gaussian_kl(mu, logvar)
    return {"loss": r + beta * kl, "recon": r, "kl": kl}


def vae_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, *, recon: str = "bce",
             beta: float = 1.0, clip_norm: float | None = None) -> dict[str, float]:
    """One gradient step on the batch-mean VAE loss; optional gradient-norm clipping."""
    terms = vae_loss(model, x, recon=recon, beta=beta)
    opt.zero_grad(set_to_none=True)
    terms["loss"].mean().backward()
    if clip_norm is not None:
        nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    opt.step()
    return {k: v.mean().item() for k, v in terms.items()} | {"beta": beta}


def negative_elbo(model: nn.Module, x: torch.Tensor, *, recon: str = "bce", samples: int = 1,
                  posterior: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Per-sample -ELBO averaged over ``samples`` draws of z (nats when x is binary and recon is bce).

    Computed in eval mode, without gradients. Pass ``posterior=(mu, logvar)`` when
    ``model.encode(x)`` has already been computed.
    """
    with evaluating(model):
        mu, logvar = model.encode(x) if posterior is None else posterior
        kl = gaussian_kl(mu, logvar)
        r = torch.stack([
            reconstruction_loss(model.decode(mu + torch.randn_like(mu) * (0.5 * logvar).exp()), x, recon)
            for _ in range(samples)
        ]).mean(0)
        return r + kl


class KLWarmup:
    """Linear KL warm-up (Bowman et al. 2016; Sønderby et al. 2016): beta rises 0 -> ``beta``.

    Starting with a weak KL term lets the decoder learn to use z before the prior pulls q(z|x)
    onto it, which guards against posterior collapse. Put it in ``fit``'s state to resume it.
    """

    def __init__(self, steps: int, beta: float = 1.0) -> None:
        self.steps, self.target, self.done = max(steps, 0), beta, 0

    def beta(self) -> float:
        """The weight for the current step."""
        return self.target if self.steps == 0 else self.target * min(1.0, self.done / self.steps)

    def advance(self) -> None:
        self.done += 1

    def state_dict(self) -> dict[str, Any]:
        return {"done": self.done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.done = state["done"]
