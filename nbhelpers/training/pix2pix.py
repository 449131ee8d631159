"""The pix2pix step (Isola et al. 2017), and test-set scoring.

The objective is G* = arg min_G max_D  L_cGAN(G, D) + lambda * L_L1(G), with lambda = 100:

1. **D update** on the pair (input x, target y) against (x, G(x)) detached, BCE with logits on
   every PatchGAN logit. The paper halves D's loss "which slows down the rate at which D learns
   relative to G"; we do the same.
2. **G update** on the generator loss, which the step takes as a parameter: it is notebook 04's
   exercise 4.4 (``generator_loss``), the non-saturating BCE(D(x, G(x)), 1) plus lambda times
   the mean absolute error to the target. L1 gets the low frequencies right (where things are);
   the GAN term, judged patch by patch, adds the high-frequency texture L1 alone blurs away.

Optimisers as in the paper: Adam, learning rate 2e-4, beta1 = 0.5.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from nbhelpers import metrics
from nbhelpers.training.device import module_device
from nbhelpers.training.inference import eval_batches, evaluating

LAMBDA_L1 = 100.0
LOSS_KEYS = ("gen_total_loss", "gen_gan_loss", "gen_l1_loss", "disc_loss")

# (D's logits on (x, G(x)), or None for the L1-only model; G(x); y; lambda) -> (total, gan, l1)
GeneratorLoss = Callable[[torch.Tensor | None, torch.Tensor, torch.Tensor, float],
                         tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def make_optimizers(G: nn.Module, D: nn.Module | None = None, *, lr: float = 2e-4,
                    beta1: float = 0.5) -> tuple[torch.optim.Adam, torch.optim.Adam | None]:
    """Adam for G and (if given) D with the paper's learning rate and beta1."""
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(beta1, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(beta1, 0.999)) if D is not None else None
    return opt_g, opt_d


def _bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def pix2pix_step(G: nn.Module, D: nn.Module | None, opt_g: torch.optim.Optimizer,
                 opt_d: torch.optim.Optimizer | None, inputs: torch.Tensor, targets: torch.Tensor, *,
                 generator_loss: GeneratorLoss, lambda_l1: float = LAMBDA_L1,
                 l1_only: bool = False) -> dict[str, float]:
    """One D update then one G update on ``generator_loss``; with ``l1_only`` only G trains.

    ``inputs`` and ``targets`` are (N, 3, H, W) in [-1, 1]. With ``l1_only`` the generator loss
    gets no logits (``None``), so it is lambda * L1 alone. Returns the four TensorBoard scalars
    of the TF tutorial (only ``gen_total_loss`` and ``gen_l1_loss`` with ``l1_only``).
    """
    fake = G(inputs)
    logs: dict[str, float] = {}
    if not l1_only:
        if D is None or opt_d is None:
            raise ValueError("pix2pix_step needs D and opt_d unless l1_only=True.")
        opt_d.zero_grad(set_to_none=True)
        disc_loss = 0.5 * (_bce(D(inputs, targets), True) + _bce(D(inputs, fake.detach()), False))
        disc_loss.backward()
        opt_d.step()
        logs["disc_loss"] = disc_loss.item()

    opt_g.zero_grad(set_to_none=True)
    logits = None if l1_only else D(inputs, fake)
    total, gan, l1 = generator_loss(logits, fake, targets, lambda_l1)
    total.backward()  # also fills D's .grad, which opt_d.zero_grad clears before D's next update
    opt_g.step()
    logs.update(gen_total_loss=total.item(), gen_l1_loss=l1.item())
    if not l1_only:
        logs["gen_gan_loss"] = gan.item()
    return logs


def translate_pairs(G: nn.Module, data: Dataset, *, batch_size: int = 8
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(inputs, targets, G(inputs)) over a paired dataset, on the CPU, in [-1, 1].

    G runs in eval mode, which turns dropout off so that the scores repeat exactly; the paper
    keeps dropout on at test time as the generator's source of noise. G's mode is restored
    after. Under ``NBH_MAX_EVAL_ITEMS`` only a few pairs are translated, and all three tensors
    hold those.
    """
    device = module_device(G)
    xs, ys, outs = [], [], []
    with evaluating(G):
        for x, y in eval_batches(data, batch_size):
            xs.append(x)
            ys.append(y)
            outs.append(G(x.to(device)).float().cpu())
    return torch.cat(xs), torch.cat(ys), torch.cat(outs)


def translation_scores(inputs: torch.Tensor, targets: torch.Tensor,
                       outputs: torch.Tensor) -> dict[str, float]:
    """Test-set L1, PSNR and SSIM of ``outputs``, and the L1 of copying the input as the answer.

    L1 is the mean absolute error on the [-1, 1] scale G trains on (so it compares with
    ``gen_l1_loss``); PSNR and SSIM are computed on images mapped to [0, 1].
    """
    def unit(t: torch.Tensor) -> torch.Tensor:
        return (t.clamp(-1, 1) + 1) / 2

    return {
        "l1": (outputs - targets).abs().mean().item(),
        "psnr": float(metrics.psnr(unit(outputs), unit(targets)).mean()),
        "ssim": float(metrics.ssim(unit(outputs), unit(targets)).mean()),
        "input_copy_l1": (inputs - targets).abs().mean().item(),
    }
