"""Checks of notebook 01's exercises (PixelDA, Bousmalis et al. 2017; pseudo-labels, Lee 2013).

Every value expected here is worked out by hand on toy networks whose outputs are known exactly:
a toy D whose logit is ``k`` times the mean of channel 1 of a ``(N, 2, 10)`` batch, a toy T whose
ten logits are ``s`` times channel 0, and batches that put a one-hot digit in channel 0 and a
constant in channel 1. With ``k = ln 3`` a channel-1 value of 1 gives D(x) = 3/4 and -1 gives
1/4; with ``s = ln 9`` a one-hot of the right digit gives T's softmax 1/2 for it (cross-entropy
ln 2) and of a wrong digit 1/18 (ln 18). G is stood in for by a leaf tensor added to the
translations, so "a gradient reaches G" means that leaf gets a non-zero gradient.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from nbhelpers.exercises import Report, check, is_scalar

LN2, LN3, LN9 = math.log(2), math.log(3), math.log(9)
LABELS = torch.tensor([0, 1, 2, 3])
# The translations show digits 0, 1, 5, 6 for labels 0, 1, 2, 3: two right, two wrong.
SHOWN = [0, 1, 5, 6]
# T's cross-entropy on those translations: (ln 2 + ln 2 + ln 18 + ln 18) / 4 = ln 6.
CE_SHOWN = math.log(6)


class _ToyD(nn.Module):
    """Logit = k * mean of channel 1."""

    def __init__(self, k: float = LN3) -> None:
        super().__init__()
        self.k = nn.Parameter(torch.tensor(k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.k * x[:, 1].mean(1)


class _ToyT(nn.Module):
    """Ten logits = s * channel 0."""

    def __init__(self, s: float = LN9) -> None:
        super().__init__()
        self.s = nn.Parameter(torch.tensor(s))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.s * x[:, 0]


def _batch(digits: Sequence[int] | None, level: float) -> torch.Tensor:
    """(4, 2, 10): channel 0 one-hot ``digits`` (zeros if None), channel 1 all ``level``."""
    x = torch.zeros(4, 2, 10)
    if digits is not None:
        x[torch.arange(4), 0, torch.tensor(digits)] = 1.0
    x[:, 1] = level
    return x


def _from_g(base: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(translations attached to a stand-in G, that stand-in's leaf)."""
    g = torch.zeros_like(base, requires_grad=True)
    return base + g, g


def _rounded(t: torch.Tensor) -> list[float]:
    return [round(v, 4) for v in t.detach().float().view(-1).tolist()]


def _backward(loss: torch.Tensor) -> None:
    """Backpropagate, if anything can be: a loss computed under no_grad leaves every gradient empty."""
    if loss.requires_grad:
        loss.backward()


def _got_grad(t: torch.Tensor) -> bool:
    return t.grad is not None and bool(t.grad.abs().sum() > 0)


def _near(r: Report, value: torch.Tensor, expected: float, what: str, hint: str = "") -> bool:
    """A finding that a scalar is ``expected`` (to 1e-5), with a hint when it is not."""
    got = float(value.detach() if isinstance(value, torch.Tensor) else value)
    return r.ok(abs(got - expected) <= 1e-5, what,
                f"expected {expected:.4f}, got {got:.4f}" + (f". Hint: {hint}" if hint else ""))


def _update_one_gradients(r: Report, loss: torch.Tensor, g: torch.Tensor, param: torch.Tensor,
                          net: str) -> None:
    """Findings after backpropagating an update-1 loss: none into G (fixed), some into ``net``."""
    _backward(loss)
    r.ok(not _got_grad(g), "no gradient reaches G (G is fixed in this update)",
         f"G's stand-in got a gradient: give {net} the translations detached, adapted.detach()")
    r.ok(_got_grad(param), f"the gradient reaches {net}'s parameters",
         f"{net}'s parameter got no gradient: do not compute the loss under torch.no_grad() or detach "
         f"{net}'s output")


def _scalar(r: Report, loss: object, name: str) -> bool:
    shown = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
    return r.ok(is_scalar(loss), f"{name} is a scalar tensor", f"got {shown}: average over the batch (a mean, not a sum)")


@check("1.1", "the discriminator's loss")
def discriminator_loss(r: Report, fn: Callable) -> None:
    """Values at hand-computed points, D's logits returned, no gradient into G, gradient into D."""
    D = _ToyD()
    loss, _, _ = fn(D, _batch(None, 0.0), _batch(SHOWN, 0.0))
    if not _scalar(r, loss, "the loss"):
        return
    _near(r, loss, 2 * LN2, "a D that cannot tell (all logits 0) scores 2 ln 2 (ln 2 per term)")

    D = _ToyD()
    adapted, g = _from_g(_batch(SHOWN, 0.0))
    loss, logits_real, logits_fake = fn(D, _batch(None, 1.0), adapted)
    _near(r, loss, math.log(8 / 3), "D(target) = 3/4, D(translation) = 1/2: loss -ln(3/4) - ln(1 - 1/2) = ln(8/3)",
          "real MNIST-M is labelled 1 and translations 0, each term a batch mean (ln 8 would mean the "
          "labels are swapped)")
    r.close(logits_real.detach(), torch.full((4,), LN3), "logits_real are D's logits on target (ln 3 each)")
    r.close(logits_fake.detach(), torch.zeros(4), "logits_fake are D's logits on the translations (0 each)")
    _update_one_gradients(r, loss, g, D.k, "D")


@check("1.2", "the task classifier's loss")
def task_loss(r: Report, fn: Callable) -> None:
    """Values at hand-computed points, T's logits returned, no gradient into G, gradient into T."""
    loss, _ = fn(_ToyT(0.0), _batch(LABELS.tolist(), 0.5), LABELS, _batch(SHOWN, 0.0))
    if not _scalar(r, loss, "the loss"):
        return
    _near(r, loss, 2 * math.log(10), "a T with equal logits scores 2 ln 10 (ln 10 per term)")

    T = _ToyT()
    adapted, g = _from_g(_batch(SHOWN, 0.0))
    loss, logits_adapted = fn(T, _batch(LABELS.tolist(), 0.5), LABELS, adapted)
    _near(r, loss, LN2 + CE_SHOWN,
          "T reads every MNIST digit at 1/2 (ln 2) and half the translations right (ln 6): ln 12",
          "the sum of two batch-mean cross-entropies, on the MNIST images and on the translations, "
          "both with the MNIST labels")
    r.close(logits_adapted.detach(), LN9 * _batch(SHOWN, 0.0)[:, 0],
            "logits_adapted are T's logits on the translations, shape (4, 10)")
    _update_one_gradients(r, loss, g, T.s, "T")


@check("1.3", "the generator's loss")
def generator_loss(r: Report, fn: Callable) -> None:
    """Non-saturating term at hand-computed points, the alpha/beta weights, gradient into G."""
    loss, adversarial = fn(_ToyD(), _ToyT(0.0), _batch(SHOWN, 0.0), LABELS, alpha=1.0, beta=1.0)
    if not _scalar(r, loss, "the loss"):
        return
    _near(r, adversarial, LN2, "D(translation) = 1/2 (logits 0): the adversarial term is ln 2")
    _near(r, loss, LN2 + math.log(10), "with equal T logits too, the loss (alpha = beta = 1) is ln 2 + ln 10")

    adapted, g = _from_g(_batch(SHOWN, -1.0))
    loss, adversarial = fn(_ToyD(), _ToyT(), adapted, LABELS, alpha=2.0, beta=0.5)
    _near(r, adversarial, math.log(4), "D(translation) = 1/4: the non-saturating term -ln D = ln 4, unweighted",
          "G minimises -log sigma(logit), the cross-entropy against label 1 (+-ln(4/3) is the "
          "saturating log(1 - D) form)")
    _near(r, loss, 2 * math.log(4) + 0.5 * CE_SHOWN,
          "alpha = 2, beta = 0.5: loss 2 ln 4 + 0.5 ln 6 (T's cross-entropy on the translations)",
          "alpha weighs the adversarial term, beta T's cross-entropy on the translations")
    _backward(loss)
    r.ok(_got_grad(g), "the gradient reaches G",
         "G's stand-in got no gradient: here the translations must stay attached (no detach, no no_grad)")


@check("1.4", "confident pseudo-labels")
def pseudo_labels(r: Report, fn: Callable) -> None:
    """Guesses, confidences and kept mask on a hand-made probability table; edge thresholds."""
    probs = torch.tensor([[0.70, 0.10, 0.10, 0.10],
                          [0.05, 0.05, 0.05, 0.85],
                          [0.30, 0.20, 0.40, 0.10],
                          [0.10, 0.65, 0.15, 0.10],
                          [0.20, 0.30, 0.45, 0.05]])
    # Logits of those probabilities, each row shifted: softmax is unchanged, the raw numbers are not.
    logits = probs.log() + torch.tensor([[3.0], [-2.0], [0.0], [7.0], [1.0]])
    labels, confidence, keep = fn(logits, 0.6)
    r.ok(labels.shape == (5,) and not labels.is_floating_point() and labels.tolist() == [0, 3, 2, 1, 2],
         "labels are each image's most probable class", f"expected [0, 3, 2, 1, 2] (integers), got {labels.tolist()}")
    r.ok(confidence.shape == (5,) and torch.allclose(confidence.float(), probs.max(1).values, atol=1e-5),
         "confidence is the softmax probability of that class",
         f"expected {_rounded(probs.max(1).values)}, got {_rounded(confidence)}. Hint: softmax over the "
         "classes (dim 1) first: logits are not probabilities")
    expected = [True, True, False, True, False]
    r.ok(keep.dtype == torch.bool and keep.tolist() == expected, "threshold 0.6 keeps the rows with confidence >= 0.6",
         f"expected the boolean mask {expected}, got {keep.tolist()}")
    _, confidence, keep = fn(torch.zeros(3, 4), 0.25)
    r.ok(keep.tolist() == [True] * 3, "an image exactly at the threshold is kept (>=, not >)",
         f"equal logits over 4 classes give confidence 0.25; threshold 0.25 kept {keep.tolist()}")
    r.ok(fn(logits, 0.0)[2].all().item() and not fn(logits, 1.01)[2].any().item(),
         "threshold 0 keeps every image, a threshold above 1 none")
