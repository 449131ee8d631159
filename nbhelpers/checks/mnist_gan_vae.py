"""Checks of notebook 05's exercises: the GAN step, slerp, active units, the anomaly decision.

Every check builds its own tiny case (linear networks, hand-picked vectors and scores) whose right
answer is worked out on paper below, and runs in well under a second on the CPU.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nbhelpers.exercises import Report, check

GAN_KEYS = {"loss_d", "loss_g", "d_real", "d_fake"}


# --- 5.1 the GAN step ----------------------------------------------------------------------------

class _Net(nn.Module):
    """A linear layer that records the labels of every call (``None`` for an unconditional call)."""

    def __init__(self, n_in: int, n_out: int, *, squeeze: bool = False) -> None:
        super().__init__()
        self.linear, self.squeeze, self.seen = nn.Linear(n_in, n_out), squeeze, []

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        self.seen.append(labels)
        out = self.linear(x)
        return out.squeeze(1) if self.squeeze else out


def _pair(seed: int = 0) -> tuple[_Net, _Net]:
    """G: 3-d noise -> 4 "pixels"; D: 4 pixels -> one logit per image."""
    torch.manual_seed(seed)
    return _Net(3, 4), _Net(4, 1, squeeze=True)


def _fixed_pair(g_out: list[float], d_weight: list[float], d_bias: float) -> tuple[_Net, _Net]:
    """A G whose output is ``g_out`` for every z, and a D with the given weights."""
    G, D = _pair()
    with torch.no_grad():
        G.linear.weight.zero_()
        G.linear.bias.copy_(torch.tensor(g_out))
        D.linear.weight.copy_(torch.tensor([d_weight]))
        D.linear.bias.fill_(d_bias)
    return G, D


def _frozen_step(gan_step: Callable[..., dict[str, float]], G: nn.Module, D: nn.Module,
                 real: torch.Tensor) -> dict[str, float]:
    """One step with learning rate 0, so both networks stay as built and every value is on paper."""
    opt_g, opt_d = torch.optim.SGD(G.parameters(), lr=0.0), torch.optim.SGD(D.parameters(), lr=0.0)
    return gan_step(G, D, opt_g, opt_d, real, latent_dim=3)


def _params(net: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def _grads(net: nn.Module) -> list[torch.Tensor]:
    """Each parameter's gradient (zeros where there is none)."""
    return [torch.zeros_like(p) if p.grad is None else p.grad.detach().clone()
            for p in net.parameters()]


def _watch(opt: torch.optim.Optimizer, name: str, G: nn.Module, D: nn.Module,
           log: list[dict[str, Any]]) -> None:
    """Record, at every ``opt.step()``, the networks' parameters and gradients before and after it."""
    step = opt.step

    def watched(*args: Any, **kwargs: Any) -> Any:
        entry = {"name": name, "g_grads": _grads(G), "d_grads": _grads(D),
                 "g_before": _params(G), "d_before": _params(D)}
        out = step(*args, **kwargs)
        log.append(entry | {"g_after": _params(G), "d_after": _params(D)})
        return out

    opt.step = watched  # type: ignore[method-assign]


def _watched_step(gan_step: Callable[..., dict[str, float]], G: nn.Module, D: nn.Module,
                  real: torch.Tensor, *, lr: float = 0.1, seed: int = 0, calls: int = 1,
                  labels: torch.Tensor | None = None,
                  ) -> tuple[list[dict[str, Any]], list[dict[str, float]]]:
    """Run ``calls`` steps (each after ``torch.manual_seed(seed)``) with watched SGD optimisers."""
    opt_g, opt_d = torch.optim.SGD(G.parameters(), lr=lr), torch.optim.SGD(D.parameters(), lr=lr)
    log: list[dict[str, Any]] = []
    _watch(opt_g, "opt_g", G, D, log)
    _watch(opt_d, "opt_d", G, D, log)
    results = []
    for _ in range(calls):
        torch.manual_seed(seed)
        results.append(gan_step(G, D, opt_g, opt_d, real, latent_dim=3, labels=labels))
    return log, results


@check("5.1", "gan_step")
def gan_step(report: Report, gan_step: Callable[..., dict[str, float]]) -> None:
    """Hand-computed losses, which network each update moves, gradients, labels, determinism."""
    real = torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(6, 1)

    # D's logits are 0 for every input: each BCE term is ln 2, the values of the game's equilibrium.
    G, D = _fixed_pair([0.5, -0.5, 0.5, -0.5], [0.0] * 4, 0.0)
    logs = _frozen_step(gan_step, G, D, real)
    report.ok(isinstance(logs, dict) and set(logs) == GAN_KEYS,
              "returns a dict with exactly the keys loss_d, loss_g, d_real, d_fake",
              f"got {sorted(logs) if isinstance(logs, dict) else type(logs).__name__}")
    report.ok(all(isinstance(v, float) for v in logs.values()), "every value is a Python float",
              "got types " + str({k: type(v).__name__ for k, v in logs.items()})
              + "; hint: tensor.item() turns a one-element tensor into a float")
    report.close(logs.get("loss_d"), 2 * math.log(2),
                 "D outputs logit 0 everywhere: loss_d = BCE(0, 1) + BCE(0, 0) = 2 ln 2")
    report.close(logs.get("loss_g"), math.log(2),
                 "D outputs logit 0 everywhere: loss_g = BCE(0, 1) = ln 2")
    report.close([logs.get("d_real"), logs.get("d_fake")], [0.5, 0.5],
                 "D outputs logit 0 everywhere: d_real = d_fake = sigmoid(0) = 1/2")

    # G always draws (0, 1, 0, 0); D's logit is 2 on the real rows and -1 on the generated ones.
    G, D = _fixed_pair([0.0, 1.0, 0.0, 0.0], [2.5, -0.5, 0.0, 0.0], -0.5)
    logs = _frozen_step(gan_step, G, D, real)
    softplus = F.softplus
    report.close([logs.get("d_real"), logs.get("d_fake")], torch.sigmoid(torch.tensor([2.0, -1.0])),
                 "d_real = sigmoid(2) on the real batch, d_fake = sigmoid(-1) on the generated one")
    report.close(logs.get("loss_d"), softplus(torch.tensor(-2.0)) + softplus(torch.tensor(-1.0)),
                 "loss_d = BCE(2, 1) + BCE(-1, 0) = softplus(-2) + softplus(-1)")
    report.close(logs.get("loss_g"), softplus(torch.tensor(1.0)),
                 "loss_g is the non-saturating -log D(G(z)) = softplus(1), not log(1 - D(G(z)))")

    # A small learning rate, watched: which optimiser steps, when, and what it moves.
    G, D = _pair()
    g0, d0 = _params(G), _params(D)
    log, _ = _watched_step(gan_step, G, D, real)
    names = [e["name"] for e in log]
    report.ok(names == ["opt_d", "opt_g"], "opt_d.step() then opt_g.step(), each exactly once",
              f"the optimisers stepped in this order: {names}")
    if names == ["opt_d", "opt_g"]:
        d_step, g_step = log
        report.ok(not _same(d0, d_step["d_after"]), "the D update changes D's parameters",
                  "D is the same after opt_d.step(): did loss_d.backward() run before it?")
        report.ok(all(not g.any() for g in d_step["g_grads"]),
                  "no gradient reaches G during the D update (the fake batch is detached)",
                  "G's parameters hold a gradient when opt_d.step() runs: detach G(z) in the D loss")
        report.ok(_same(d_step["d_after"], _params(D)), "the G update leaves D as the D update left it",
                  "D's parameters changed after opt_d.step(): the G update must step opt_g only")
        report.ok(_same(g0, d_step["g_after"]) and not _same(g0, _params(G)),
                  "G changes in the G update, and only there",
                  "G's parameters did not change as expected: is opt_g.step() called after loss_g.backward()?")
        report.ok(all(g.any() for g in g_step["g_grads"]), "the G loss reaches every parameter of G",
                  "some of G's parameters had no gradient at opt_g.step(): is G(z) detached in the G loss?")

    # Two identical calls (same seed, learning rate 0): each optimiser must step on the same gradient.
    G, D = _pair()
    log, results = _watched_step(gan_step, G, D, real, lr=0.0, calls=2)
    if [e["name"] for e in log] == ["opt_d", "opt_g"] * 2:
        same = _same(log[0]["d_grads"], log[2]["d_grads"]) and _same(log[1]["g_grads"], log[3]["g_grads"])
        report.ok(same, "gradients are zeroed before each backward pass",
                  "a second identical call saw different gradients: call opt_d.zero_grad() and "
                  "opt_g.zero_grad() before each backward, or gradients pile up across steps")
    report.ok(results[0] == results[1], "deterministic under a seed: the same seed gives the same values",
              f"got {results[0]} then {results[1]}; draw z with torch's global generator "
              "(sample_noise does), so torch.manual_seed fixes it")
    G2, D2 = _pair(seed=1)
    G3, D3 = copy.deepcopy(G2), copy.deepcopy(D2)
    _, (first,) = _watched_step(gan_step, G2, D2, real, seed=7)
    _, (second,) = _watched_step(gan_step, G3, D3, real, seed=8)
    report.ok(first != second, "a different seed draws different noise",
              "two different seeds gave the same values: draw fresh z at every step")

    # A conditional pair: both networks see the labels at every call.
    G, D = _pair()
    labels = torch.arange(6) % 2
    _watched_step(gan_step, G, D, real, labels=labels)
    seen = G.seen + D.seen
    report.ok(bool(seen) and all(lab is labels for lab in seen),
              "with labels, G and D are called with them at every call (cGAN)",
              f"{sum(lab is not labels for lab in seen)} of {len(seen)} calls went without the labels: "
              "use call(net, x, labels)")


# --- 5.2 spherical interpolation -----------------------------------------------------------------

@check("5.2", "slerp")
def slerp(report: Report, slerp: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]) -> None:
    """Shape, endpoints, the great circle of two orthogonal unit vectors, the parallel fallback."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, generator=g), 3 * torch.randn(5, generator=g)
    path = slerp(a, b, 7)
    report.ok(tuple(path.shape) == (7, 5), "shape (steps, dim)", f"expected (7, 5), got {tuple(path.shape)}")
    report.close(path[0], a, "the path starts at a")
    report.close(path[-1], b, "the path ends at b")

    e1, e2 = torch.eye(2)
    arc = slerp(e1, e2, 5)
    report.close(arc.norm(dim=1), torch.ones(5), "orthogonal unit vectors: every point has norm 1")
    report.close(arc[2], (e1 + e2) / math.sqrt(2), "orthogonal unit vectors: the midpoint is (a + b)/sqrt 2")
    angle = torch.tensor(math.pi / 8)
    report.close(arc[1], torch.stack([angle.cos(), angle.sin()]),
                 "t = 1/4 of a quarter circle: (cos pi/8, sin pi/8), a quarter of the angle, not of the chord")
    report.close(slerp(3 * e1, e2, 3).norm(dim=1), [3.0, 2.0, 1.0],
                 "norms 3 and 1: the norm moves linearly along the path (3, 2, 1)")

    nearly = e1 + torch.tensor([0.0, 1e-7])
    near = slerp(e1, nearly, 4)
    report.ok(bool(torch.isfinite(near).all()), "nearly parallel vectors give no NaN or inf",
              "sin(Omega) is about 0 there: fall back to the straight line (lerp) for tiny angles")
    report.close(slerp(e1, 2 * e1, 3), torch.stack([e1, 1.5 * e1, 2 * e1]),
                 "parallel vectors: the straight path a, (a + b)/2, b")
    double = slerp(e1.double(), e2.double(), 3)
    report.ok(double.dtype == torch.float64, "keeps the inputs' dtype", f"float64 inputs gave {double.dtype}")


# --- 5.3 active latent units ---------------------------------------------------------------------

@check("5.3", "active_units")
def active_units(report: Report, active_units: Callable[..., int]) -> None:
    """A hand-built set of latent means with known per-dimension variances."""
    signs = torch.tensor([1.0, -1.0] * 3)  # six images
    # Dimension variances over the six images (biased / unbiased): 0, 0.04 / 0.048,
    # 0.0025 / 0.003, 9 / 10.8: active at 0.01 are dimensions 1 and 3, at 0.001 also 2.
    mu = torch.stack([torch.full((6,), 0.7), 0.2 * signs, 0.05 * signs, 3 * signs], dim=1)
    n = active_units(mu)
    report.ok(isinstance(n, int), "returns a Python int", f"got {type(n).__name__}; hint: int(...)")
    report.ok(n == 2, "variances 0, 0.04, 0.0025 and 9 over the images: 2 active at the default 0.01",
              f"got {n}; the variance is taken over the images (dim 0), for each latent dimension")
    low = active_units(mu, threshold=0.001)
    report.ok(low == 3, "the threshold argument is used: 3 active at 0.001", f"got {low}")
    report.ok(active_units(torch.zeros(4, 8)) == 0, "a collapsed code (every mean 0): no active unit",
              f"got {active_units(torch.zeros(4, 8))}")


# --- 5.4 the anomaly decision --------------------------------------------------------------------

@check("5.4", "the anomaly decision")
def anomaly_decision(report: Report, validation_threshold: Callable[[np.ndarray, float], float],
                     detection_counts: Callable[[np.ndarray, np.ndarray, float], dict[str, Any]]) -> None:
    """The threshold as a validation quantile; the confusion counts, precision and recall by hand."""
    val = np.arange(1.0, 101.0)  # 100 clean validation scores: 1, 2, ..., 100
    t = float(validation_threshold(val, 0.05))
    report.ok(95 <= t <= 96, "scores 1..100 and fpr 0.05: the threshold is the 95% quantile, in [95, 96]",
              f"got {t:.4g}; the top 5% of clean scores should be flagged, so take the 1 - fpr quantile")
    t20 = float(validation_threshold(val, 0.2))
    report.ok(80 <= t20 <= 81, "fpr 0.2: the threshold is the 80% quantile, in [80, 81]", f"got {t20:.4g}")
    shuffled = float(validation_threshold(np.random.default_rng(0).permutation(val), 0.05))
    report.ok(shuffled == t, "the order of the validation scores does not matter",
              f"sorted scores gave {t:.4g}, shuffled {shuffled:.4g}")

    # Clean test scores 10, 50, 97, 99 and anomalies 30, 99.5, 120, 150, 200 at a threshold of 95.5.
    scores = np.array([10.0, 50.0, 97.0, 99.0, 30.0, 99.5, 120.0, 150.0, 200.0])
    is_anomaly = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1])
    r = detection_counts(is_anomaly, scores, 95.5)
    got = {k: r.get(k) for k in ("tp", "fp", "fn", "tn")}
    report.ok(got == {"tp": 4, "fp": 2, "fn": 1, "tn": 2},
              "a hand case: TP 4 (99.5, 120, 150, 200), FP 2 (97, 99), FN 1 (30), TN 2 (10, 50)",
              f"got {got}; an image is flagged when its score >= the threshold, and anomalies are positive")
    report.ok(all(isinstance(v, int | np.integer) for v in got.values()), "the counts are integers",
              "got types " + str({k: type(v).__name__ for k, v in got.items()}))
    report.close([r.get("precision"), r.get("recall")], [4 / 6, 4 / 5],
                 "precision = TP / (TP + FP) = 4/6, recall = TP / (TP + FN) = 4/5")
    tie = detection_counts(np.array([0, 0, 1, 1]), np.array([5.0, 1.0, 5.0, 9.0]), 5.0)
    report.ok((tie.get("fp"), tie.get("tp")) == (1, 2), "a score equal to the threshold is flagged (score >= t)",
              f"scores 5, 1 (clean) and 5, 9 (anomalous) at t = 5: expected FP 1, TP 2, "
              f"got FP {tie.get('fp')}, TP {tie.get('tp')}")
    none = detection_counts(np.array([0, 1]), np.array([1.0, 2.0]), 10.0)
    report.close([none.get("precision"), none.get("recall")], [0.0, 0.0],
                 "nothing flagged: precision 0 (not a division by zero) and recall 0")
