"""Checks of notebook 04's exercises: the denoising step, the ECG threshold and report, pix2pix's G loss.

Each check builds tiny inputs whose answer is worked out on paper: a one-parameter "autoencoder"
x -> w * x whose loss and gradient are written out by hand, losses whose mean and standard
deviation are fractions, seven beats whose confusion counts can be read off, and discriminator
logits of 0 (sigma = 1/2) or ln 3 (sigma = 3/4). Random draws happen under a forked generator,
so a check never moves the notebook's own random stream.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from nbhelpers.corruptions import gaussian_noise
from nbhelpers.exercises import Report, check, is_scalar, seeded

# ------------------------------------------------------------------ 4.1: the denoising step


class _Scale(nn.Module):
    """x -> w * x with one weight, starting at 1 (the identity); keeps the inputs it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return self.w * x


def _run_step(step: Callable[..., dict[str, float]], clean: torch.Tensor, std: float, seed: int,
              *, lr: float = 0.0, stale_grad: float | None = None) -> tuple[dict[str, float], _Scale]:
    """One call of the student's step on a fresh identity model with plain SGD."""
    model = _Scale()
    if stale_grad is not None:  # what a previous step would have left behind
        model.w.grad = torch.full((), stale_grad)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    return step(model, opt, clean, std=std, seed=seed), model


@check("4.1", "the denoising step")
def denoising_step(report: Report, denoising_step: Callable[..., dict[str, float]]) -> None:
    """``denoising_step(model, opt, clean, std=, seed=)`` on the identity model x -> w * x (w = 1)."""
    with seeded():
        clean = torch.rand(4, 1, 8, 8)
    kept = clean.clone()
    std, seed = 0.3, 7
    corrupted = gaussian_noise(clean, std=std, seed=seed)  # what the model must be fed
    logs, model = _run_step(denoising_step, clean, std, seed)
    report.ok(isinstance(logs, dict) and isinstance(logs.get("loss"), float),
              'returns {"loss": <a Python float>} (use .item())', f"got {logs!r}")
    report.ok(torch.equal(clean, kept), "leaves the clean batch unchanged (no in-place noise)",
              "the clean batch was modified; gaussian_noise returns a new tensor")
    seen = model.seen[0] if model.seen else None
    passed = report.ok(seen is not None and seen.shape == clean.shape and torch.allclose(seen, corrupted),
                       "the model is fed gaussian_noise(clean, std=std, seed=seed)",
                       "the model saw " + ("nothing" if seen is None else
                                           "the clean batch" if torch.equal(seen, clean) else
                                           "another tensor"))
    report.hint(passed, "corrupt the input with the given std and seed; the model must never see "
                        "the clean batch")
    # With w = 1 the reconstruction is the noisy input itself: the loss is the noise's own MSE.
    expected = (corrupted - clean).pow(2).mean().item()
    loss = logs.get("loss", float("nan")) if isinstance(logs, dict) else float("nan")
    passed = report.close(loss, expected, "identity model: loss = mean((noisy - clean)^2), "
                                          "the error of the noisy input against the CLEAN target")
    report.hint(passed, "0 means the target was the noisy input (or the input was clean); a mean "
                        "of |.| is MAE, not MSE; average over all pixels and images")
    flat = torch.full((64, 1, 28, 28), 0.5)
    logs, _ = _run_step(denoising_step, flat, 0.1, 1)
    report.close(logs["loss"], 0.01, "grey images (0.5) with std 0.1: the loss is about std^2 = 0.01",
                 atol=5e-4)
    logs, _ = _run_step(denoising_step, clean, 0.0, seed)
    report.close(logs["loss"], 0.0, "std 0: no corruption, so the identity model's loss is 0")
    a, _ = _run_step(denoising_step, clean, std, 3)
    b, _ = _run_step(denoising_step, clean, std, 3)
    c, _ = _run_step(denoising_step, clean, std, 4)
    report.ok(a["loss"] == b["loss"] and a["loss"] != c["loss"],
              "the same seed repeats the corruption; another seed draws a fresh one",
              f"losses {a['loss']:.6f}, {b['loss']:.6f} (seed 3 twice), {c['loss']:.6f} (seed 4)")
    # d/dw mean((w n - c)^2) at w = 1 is 2 mean((n - c) n): one SGD step moves w by -lr times it.
    lr = 0.1
    grad = (2 * (corrupted - clean) * corrupted).mean().item()
    _, model = _run_step(denoising_step, clean, std, seed, lr=lr, stale_grad=1000.0)
    passed = report.close(model.w.detach(), 1 - lr * grad,
                          "one SGD step (lr 0.1) moves w by -lr * 2 mean((noisy - clean) * noisy), "
                          "even with an old gradient left in w.grad", atol=1e-5)
    report.hint(passed, "zero the gradients before backward(), then call opt.step(); a move of "
                        "about 100 comes from the stale gradient of 1000")


# ------------------------------------------------------------------ 4.2: the ECG threshold


@check("4.2", "the tutorial's anomaly threshold")
def mean_std_threshold(report: Report, mean_std_threshold: Callable[..., float]) -> None:
    """``mean_std_threshold(train_losses, k=1.0)`` on losses whose mean and std are known."""
    value = mean_std_threshold(np.array([1.0, 2.0, 3.0, 4.0]))
    report.ok(isinstance(value, float), "returns a Python float", f"got {type(value).__name__}")
    passed = report.close(value, 2.5 + math.sqrt(1.25),
                          "losses 1, 2, 3, 4: mean 2.5 plus the population std sqrt(1.25)")
    report.hint(passed, f"{2.5 + math.sqrt(5 / 3):.4f} would be the sample std (ddof=1, torch's and "
                        "pandas' default); the tutorial uses np.std, which divides by N")
    report.close(mean_std_threshold(np.array([1.0, 3.0]), k=2.0), 4.0,
                 "losses 1, 3 with k = 2: 2 + 2 * 1")
    report.close(mean_std_threshold(np.array([1.0, 3.0]), k=0.0), 2.0, "k = 0 gives the mean")
    report.close(mean_std_threshold(np.full(5, 0.04, dtype=np.float32)), 0.04,
                 "identical (float32) losses: the threshold is that loss", atol=1e-7)
    with seeded():
        losses = torch.rand(50).numpy()
    report.close(mean_std_threshold(10 * losses), 10 * mean_std_threshold(losses),
                 "scaling every loss by 10 scales the threshold by 10", atol=1e-6)


# ------------------------------------------------------------------ 4.3: the anomaly report

_KEYS = ("accuracy", "precision", "recall", "anomaly_precision", "anomaly_recall")
# Seven beats: losses and labels (1 = anomalous). At threshold 0.35 the rule flags the last four.
_LOSSES = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6])
_ANOMALOUS = np.array([False, False, False, True, False, True, True])


def _values(report: Report, scores: dict[str, Any], expected: dict[str, float], what: str) -> bool:
    got = {k: scores.get(k) for k in expected}
    passed = all(v is not None and abs(float(v) - expected[k]) < 1e-9 for k, v in got.items())
    shown = ", ".join(f"{k} {float(v):.4g}" if v is not None else f"{k} missing" for k, v in got.items())
    want = ", ".join(f"{k} {v:.4g}" for k, v in expected.items())
    return report.ok(passed, what, f"expected {want}; got {shown}")


@check("4.3", "the anomaly report, counted both ways round")
def anomaly_report(report: Report, anomaly_report: Callable[..., dict[str, float]]) -> None:
    """``anomaly_report(losses, is_anomaly, threshold)`` on seven beats counted by hand."""
    scores = anomaly_report(_LOSSES, _ANOMALOUS, 0.35)
    report.ok(isinstance(scores, dict) and all(isinstance(scores.get(k), float) for k in _KEYS),
              f"returns a dict of Python floats with keys {', '.join(_KEYS)}",
              f"got {scores!r}")
    # Predicted normal: 0.1, 0.2, 0.3 (all normal) of the four normals; flagged: 0.35, 0.4, 0.5,
    # 0.6, of which three are anomalies and one (0.4) is normal.
    passed = _values(report, scores, {"precision": 1.0, "recall": 0.75},
                     "normal as the positive class: precision 3/3, recall 3/4")
    report.hint(passed, "precision = TN / (TN + FN): of the beats called normal, how many are; "
                        "recall = TN / (TN + FP): of the normal beats, how many were called normal")
    passed = _values(report, scores, {"anomaly_precision": 0.75, "anomaly_recall": 1.0},
                     "the anomaly as the positive class: precision 3/4, recall 3/3")
    report.hint(passed, "a loss equal to the threshold is anomalous (loss >= threshold); "
                        "anomaly precision = TP / (TP + FP), anomaly recall = TP / (TP + FN)")
    _values(report, scores, {"accuracy": 6 / 7}, "accuracy 6/7: one normal beat (0.4) is flagged")
    tie = anomaly_report(np.array([0.2, 0.5]), np.array([0, 1]), 0.5)
    _values(report, tie, {"anomaly_recall": 1.0, "accuracy": 1.0},
            "a loss exactly at the threshold counts as anomalous")
    none = anomaly_report(_LOSSES, _ANOMALOUS.astype(int), 1.0)
    _values(report, none, {"accuracy": 4 / 7, "precision": 4 / 7, "recall": 1.0,
                           "anomaly_precision": 0.0, "anomaly_recall": 0.0},
            "threshold above every loss: all called normal (a precision with nothing predicted is 0)")
    every = anomaly_report(_LOSSES, _ANOMALOUS, 0.0)
    _values(report, every, {"accuracy": 3 / 7, "precision": 0.0, "recall": 0.0,
                            "anomaly_precision": 3 / 7, "anomaly_recall": 1.0},
            "threshold below every loss: all flagged (nothing called normal: normal precision 0)")


# ------------------------------------------------------------------ 4.4: pix2pix's G loss


def _loss(fn: Callable[..., Any], logits: torch.Tensor | None, fake: torch.Tensor,
          target: torch.Tensor, lambda_l1: float) -> tuple[float, float, float]:
    total, gan, l1 = fn(logits, fake, target, lambda_l1)
    return float(total), float(gan), float(l1)


@check("4.4", "the pix2pix generator loss")
def generator_loss(report: Report, generator_loss: Callable[..., Any]) -> None:
    """``generator_loss(fake_logits, fake, target, lambda_l1)`` with logits of 0 and ln 3, known errors."""
    from nbhelpers.models.pix2pix import PatchDiscriminator, UNetGenerator
    from nbhelpers.training.pix2pix import LOSS_KEYS, make_optimizers, pix2pix_step

    with seeded():
        target = torch.rand(2, 3, 8, 8) * 2 - 1
    zeros = torch.zeros(2, 1, 3, 3)
    out = generator_loss(zeros, target.clone(), target, 100.0)
    report.ok(isinstance(out, tuple) and len(out) == 3 and all(is_scalar(t) for t in out),
              "returns (total, gan, l1), three 0-dimensional tensors", f"got {out!r}")
    total, gan, l1 = _loss(generator_loss, zeros, target.clone(), target, 100.0)
    report.close(gan, math.log(2), "D's logits all 0 (D says 1/2): GAN term = -ln(1/2) = ln 2")
    report.close(l1, 0.0, "output = target: L1 term = 0")
    report.close(total, math.log(2), "so the total is ln 2")
    gan = _loss(generator_loss, torch.full((2, 1, 3, 3), math.log(3)), target, target, 100.0)[1]
    passed = report.close(gan, math.log(4 / 3),
                          "logits ln 3 (D says 3/4 real): non-saturating GAN term -ln(3/4) = ln(4/3)")
    report.hint(passed, f"{math.log(4):.4f} = -ln(1/4) means the fakes were labelled 0 (D's target; "
                        f"G wants them called real, 1); {math.log(1 / 4):.4f} is the saturating "
                        "ln(1 - D), which the paper replaces")
    mixed = torch.cat([torch.zeros(1, 1, 3, 3), torch.full((1, 1, 3, 3), math.log(3))])
    report.close(_loss(generator_loss, mixed, target, target, 100.0)[1],
                 (math.log(2) + math.log(4 / 3)) / 2,
                 "half the patch logits 0, half ln 3: the GAN term is the mean over all patches")
    sign = torch.where(torch.arange(target.numel()).view_as(target) % 2 == 0, 0.5, -0.5)
    fake = target + sign  # every pixel off by exactly 0.5, half above and half below
    total, gan, l1 = _loss(generator_loss, zeros, fake, target, 100.0)
    passed = report.close(l1, 0.5, "every pixel off by +-0.5: L1 term = mean |y - G(x)| = 0.5")
    report.hint(passed, "0.25 would be the mean squared error; pix2pix uses the mean absolute error")
    report.close(total, math.log(2) + 50, "lambda = 100: total = ln 2 + 100 * 0.5")
    report.close(_loss(generator_loss, zeros, fake, target, 10.0)[0], math.log(2) + 5,
                 "lambda = 10: total = ln 2 + 10 * 0.5")
    total, gan, l1 = _loss(generator_loss, None, fake, target, 100.0)
    report.close([total, gan, l1], [50.0, 0.0, 0.5],
                 "no logits (None, the L1-only model): total = lambda * L1, GAN term 0")
    # Gradients. d/dl of -ln sigma(l), averaged over M logits, is (sigma(l) - 1) / M = -1/(2M) at 0;
    # d/dG(x) of lambda * mean|G(x) - y| over N pixels is lambda * sign(G(x) - y) / N.
    logits = zeros.clone().requires_grad_(True)
    fake = fake.clone().requires_grad_(True)
    generator_loss(logits, fake, target, 100.0)[0].backward()
    passed = report.ok(logits.grad is not None and fake.grad is not None,
                       "the gradient reaches D's logits on G(x) and G(x) itself (so G can learn)",
                       "no gradient: nothing may be detached (no .detach(), .item() or torch.no_grad())")
    if passed:
        report.close(logits.grad, torch.full_like(zeros, -1 / (2 * zeros.numel())),
                     "d total / d logit = (sigma(0) - 1) / 18 = -1/36 for each of the 18 logits")
        report.close(fake.grad, 100 * sign.sign() / fake.numel(),
                     "d total / d G(x) = lambda * sign(G(x) - y) / N for each of the N pixels")
    # The loss inside the package step: D's update, then G's on this loss.
    with seeded():
        G, D = UNetGenerator(32, base=8, max_channels=32), PatchDiscriminator(base=8)
        x, y = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    opt_g, opt_d = make_optimizers(G, D)
    g_before = [p.detach().clone() for p in G.parameters()]
    logs = pix2pix_step(G, D, opt_g, opt_d, x, y, generator_loss=generator_loss, lambda_l1=100.0)
    report.ok(set(logs) == set(LOSS_KEYS) and abs(logs["gen_total_loss"] - logs["gen_gan_loss"]
                                                  - 100 * logs["gen_l1_loss"]) < 1e-3 * logs["gen_total_loss"],
              "pix2pix_step with your loss logs gen_total_loss = gen_gan_loss + 100 * gen_l1_loss",
              f"got {logs}")
    report.ok(any(not torch.equal(a, b) for a, b in zip(g_before, G.parameters())),
              "and its G update changes G's weights", "G did not move")
