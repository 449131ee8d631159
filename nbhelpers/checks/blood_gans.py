"""Checks of notebook 03's exercises: sharpness, the WGAN-GP penalty and losses, latent arithmetic.

Each check builds tiny inputs whose answer is known on paper: a one-pixel image whose Laplacian
is written out by hand, critics whose input gradient is known everywhere (a linear critic
C(x) = <w, x> has gradient w; C(x) = ||x||^2 / 2 has gradient x), codes whose class means are
fractions. Random draws happen under a forked generator, so a check never moves the notebook's
own random stream.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from nbhelpers.exercises import Report, check, is_scalar, seeded


def _number(value: object) -> torch.Tensor:
    """A logged value (tensor or float) as a detached tensor, for comparison."""
    return value.detach() if isinstance(value, torch.Tensor) else torch.as_tensor(float(value))


def _shape(value: object) -> str:
    return f"{type(value).__name__} of shape {tuple(getattr(value, 'shape', ()))}"


# ---------------------------------------------------------------- 3.1: Laplacian sharpness


def _dot(channels: int = 1, value: float = 1.0, channel: int | None = None) -> torch.Tensor:
    """A 5x5 black image with one bright centre pixel (in ``channel``, or in all channels)."""
    x = torch.zeros(1, channels, 5, 5)
    x[0, slice(None) if channel is None else channel, 2, 2] = value
    return x


@check("3.1", "sharpness as the variance of the Laplacian")
def sharpness(report: Report, sharpness: Callable[[torch.Tensor], float]) -> None:
    """``sharpness(images)`` on a one-pixel dot, flat and ramp images, a batch, and rescalings."""
    # The dot's valid 3x3 Laplacian is -4 at the centre, 1 at its four neighbours and 0 at the
    # corners: mean 0, sum of squares 20, so the unbiased variance over the 9 positions is 20/8.
    value = sharpness(_dot())
    report.ok(isinstance(value, float), "returns a Python float (use .item())",
              f"got {type(value).__name__}")
    passed = report.close(value, 2.5,
                          "one bright pixel on black: the variance of [-4, 1, 1, 1, 1, 0, 0, 0, 0]")
    report.hint(passed, "a 'valid' 3x3 Laplacian of a 5x5 image has 3x3 values; 20/9 would be "
                        "the population variance (use torch's default, unbiased)")
    report.close(sharpness(_dot(3, value=3.0, channel=0)), 2.5,
                 "a red dot of 3 is a grey dot of 1: grey is the mean over the channels")
    report.close(sharpness(torch.full((2, 3, 8, 8), 0.7)), 0.0, "a flat image has sharpness 0")
    i, j = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    ramp = (0.1 * i + 0.05 * j).expand(1, 3, 8, 8)
    report.close(sharpness(ramp), 0.0,
                 "a linear ramp has sharpness 0 (the Laplacian is a second derivative)", atol=1e-6)
    report.close(sharpness(torch.cat([_dot(), torch.zeros(1, 1, 5, 5)])), 1.25,
                 "a batch [dot, black] gives the mean of the per-image values (2.5 + 0) / 2")
    with seeded():
        x = torch.rand(4, 3, 16, 16)
    s = sharpness(x)
    report.close(sharpness(x + 0.3), s, "adding a brightness offset leaves it unchanged", atol=1e-4)
    report.close(sharpness(2 * x), 4 * s, "doubling the contrast multiplies it by 4", atol=1e-3)
    blurred = sharpness(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
    report.ok(blurred < s, "a blurred copy is less sharp",
              f"blurred {blurred:.4f}, original {s:.4f}")


# ------------------------------------------------------------ 3.2: the gradient penalty


class _LinearCritic(nn.Module):
    """C(x) = <w, x>, plus <v_y, x> for a label y: its input gradient is w (+ v_y) everywhere."""

    def __init__(self, w: torch.Tensor, v: torch.Tensor | None = None) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.v = v

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        w = self.w.flatten() if labels is None else self.w.flatten() + self.v[labels]
        return (x.flatten(1) * w).sum(1)


class _QuadraticCritic(nn.Module):
    """C(x) = ||x||^2 / 2 per sample (input gradient x); keeps the inputs it is differentiated at.

    Only inputs that require grad are kept: those are the points the gradient is taken at.
    """

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if x.requires_grad:
            self.seen.append(x.detach().clone())
        return 0.5 * (x.flatten(1) ** 2).sum(1)


class _Shift(nn.Module):
    """A stand-in generator: fake = data + shift, so gradients that reach G land in ``shift``."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(shape))

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        return data + self.shift

    def reached(self) -> bool:
        return self.shift.grad is not None and bool(self.shift.grad.abs().sum() > 0)


@check("3.2", "the WGAN-GP gradient penalty")
def gradient_penalty(report: Report, gradient_penalty: Callable[..., torch.Tensor]) -> None:
    """Known gradient norms (linear critics), where the interpolates lie, and where gradients go."""
    with seeded():
        real, fake = torch.randn(8, 3, 4, 4), torch.randn(8, 3, 4, 4)
        w = torch.zeros(3, 4, 4)
        w[0, 0, 0], w[1, 2, 3] = 3.0, 4.0  # ||w|| = 5
        critic = _LinearCritic(w)
        gp = gradient_penalty(critic, real, fake)
        if not report.ok(is_scalar(gp), "returns a scalar tensor (the mean over the batch)",
                         f"got {_shape(gp)}"):
            return
        passed = report.close(gp.detach(), 16.0,
                              "linear critic with ||w|| = 5: (5 - 1)^2 at every x_hat")
        report.hint(passed, "one gradient norm per sample, grad.flatten(1).norm(2, dim=1), then "
                            "the mean of (norm - 1)^2")
        unit = torch.zeros(3, 4, 4)
        unit[2, 1, 1] = 1.0
        report.close(_number(gradient_penalty(_LinearCritic(unit), real, fake)), 0.0,
                     "linear critic with ||w|| = 1: no penalty")

        # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w|| = 1.6 w: the critic's update follows it.
        what = "its gradient in the critic's weights is 2 (||w|| - 1) w / ||w||"
        if gp.requires_grad:
            gp.backward()
            got = critic.w.grad if critic.w.grad is not None else torch.zeros_like(critic.w)
            report.close(got, 1.6 * w, what)
        else:
            report.ok(False, what, "the penalty carries no gradient: "
                                   "torch.autograd.grad(..., create_graph=True)")

        w1 = torch.zeros(1, 2, 2)
        w1[0, 0, 0] = 1.0
        v = torch.zeros(2, 4)
        v[1, 3] = 2.0  # class 1's gradient w1 + v_1 has norm sqrt(5); class 0's has norm 1
        gp_y = gradient_penalty(_LinearCritic(w1, v), torch.randn(4, 1, 2, 2),
                                torch.randn(4, 1, 2, 2), torch.tensor([0, 1, 0, 1]))
        report.close(_number(gp_y), (math.sqrt(5) - 1) ** 2 / 2,
                     "labels reach the critic: the mean of [0, (sqrt 5 - 1)^2, 0, (sqrt 5 - 1)^2]")

        # real = 0 and fake = (1, 1, 1, 1), of norm 2: x_hat should be (1 - eps) * fake.
        n = 4000
        fake = torch.ones(n, 1, 2, 2)
        quad = _QuadraticCritic()
        gp_q = gradient_penalty(quad, torch.zeros_like(fake), fake)
        if not report.ok(bool(quad.seen), "the critic is differentiated at interpolates x_hat",
                         "it was never called on an input that requires grad: "
                         "x_hat.requires_grad_(True)"):
            return
        x_hat = quad.seen[-1].flatten(1)
        t = x_hat / fake.flatten(1)  # 1 - eps, pixel by pixel
        one_eps = x_hat.shape[0] == n and bool((t.amax(1) - t.amin(1)).max() < 1e-5)
        between = bool(((t >= -1e-6) & (t <= 1 + 1e-6)).all())
        report.ok(one_eps and between,
                  "each x_hat lies between its real and fake sample, one eps per sample",
                  "x_hat = eps * real + (1 - eps) * fake, with eps of shape (N, 1, 1, 1)")
        eps = t[:, 0]
        report.ok(0.45 < eps.mean() < 0.55 and 0.25 < eps.std() < 0.33,
                  "eps is drawn afresh for each sample, uniform on [0, 1]",
                  f"over {n} samples: mean {eps.mean():.3f} (expected 0.5), std {eps.std():.3f} "
                  f"(expected {1 / math.sqrt(12):.3f}); use torch.rand")
        report.close(_number(gp_q), ((x_hat.norm(dim=1) - 1) ** 2).mean(),
                     "with C(x) = ||x||^2 / 2 (gradient x_hat): the mean of (||x_hat|| - 1)^2",
                     atol=1e-4)

        G = _Shift((1, 2, 2))
        gp_g = gradient_penalty(_QuadraticCritic(), torch.randn(6, 1, 2, 2),
                                G(torch.randn(6, 1, 2, 2)))
        if gp_g.requires_grad:
            gp_g.backward()
        report.ok(not G.reached(), "no gradient reaches the generator (fake is a constant here)",
                  "the penalty belongs to the critic's loss: build x_hat from fake.detach()")


# ------------------------------------------------------------- 3.3: the WGAN-GP losses


def _batch(first: float, n: int = 4) -> torch.Tensor:
    """``n`` random 1x2x2 images whose first pixel is ``first``."""
    x = torch.randn(n, 1, 2, 2)
    x[:, 0, 0, 0] = first
    return x


@check("3.3", "the WGAN-GP critic and generator losses")
def wgan_losses(report: Report, critic_loss: Callable[..., tuple],
                generator_loss: Callable[..., torch.Tensor]) -> None:
    """Linear critics with a known value and gradient norm; where each loss sends its gradients."""
    after_3_2 = "if check 3.2 failed, fix gradient_penalty first"
    e0 = torch.zeros(1, 2, 2)
    e0[0, 0, 0] = 1.0
    with seeded():
        real, fake = _batch(2.0), _batch(-1.0)  # a critic <c * e0, x> scores them 2c and -c
        out = critic_loss(_LinearCritic(e0), real, fake, gp_weight=10.0)
        if not report.ok(isinstance(out, tuple) and len(out) == 3 and is_scalar(out[0]),
                         "critic_loss returns (the loss as a scalar tensor, the estimate, "
                         "the penalty)",
                         f"got {type(out).__name__}"):
            return
        report.close(torch.stack([_number(o) for o in out]), [-3.0, 3.0, 0.0],
                     "||w|| = 1 critic scoring real 2 and fake -1: loss -3, estimate 3, penalty 0")
        G = _Shift((1, 2, 2))
        critic = _LinearCritic(2 * e0)
        out = critic_loss(critic, real, G(fake), gp_weight=10.0)
        passed = report.close(torch.stack([_number(o) for o in out]), [4.0, 6.0, 1.0],
                              "||w|| = 2: estimate 4 - (-2) = 6, penalty (2 - 1)^2 = 1, "
                              "loss -6 + 10 * 1 = 4")
        report.hint(passed, after_3_2)
        loss_0 = critic_loss(_LinearCritic(2 * e0), real, fake, gp_weight=0.0)[0]
        report.close(_number(loss_0), -6.0,
                     "gp_weight scales the penalty: with gp_weight = 0 the loss is -6")
        out[0].backward()
        report.ok(critic.w.grad is not None and bool(critic.w.grad.abs().sum() > 0),
                  "the critic loss reaches the critic's weights",
                  "its gradient in w is missing or zero")
        report.ok(not G.reached(), "the critic loss sends no gradient to the generator",
                  "score fake.detach(): the critic's update must not move G")

        v = torch.zeros(2, 4)
        v[1, 1] = 1.0  # class 1 adds the second pixel: 1 on the real batch, 0 on the fake one
        real_y, fake_y = _batch(2.0), _batch(-1.0)
        real_y[:, 0, 0, 1], fake_y[:, 0, 0, 1] = 1.0, 0.0
        out = critic_loss(_LinearCritic(e0, v), real_y, fake_y, gp_weight=10.0,
                          labels=torch.tensor([0, 1, 0, 1]))
        report.close(_number(out[1]), 3.5,
                     "labels reach the critic: estimate mean(2, 3, 2, 3) - (-1) = 3.5")
        passed = report.close(_number(out[0]), -3.5 + 10 * (math.sqrt(2) - 1) ** 2 / 2,
                              "and the loss -3.5 + 10 * mean(0, (sqrt 2 - 1)^2, 0, (sqrt 2 - 1)^2)")
        report.hint(passed, after_3_2)

        G = _Shift((1, 2, 2))
        data = _batch(0.0, n=2)
        data[:, 0, 0, 0] = torch.tensor([1.0, 3.0])
        loss_g = generator_loss(_LinearCritic(2 * e0), G(data))
        if not report.ok(is_scalar(loss_g), "generator_loss returns a scalar tensor",
                         f"got {_shape(loss_g)}"):
            return
        report.close(loss_g.detach(), -4.0, "critic scores 2 and 6 on the fakes: generator loss -4")
        if loss_g.requires_grad:
            loss_g.backward()
        if report.ok(G.reached(), "the generator loss reaches the generator through fake",
                     "do not detach fake here: this loss is what trains G"):
            report.close(G.shift.grad, -2 * e0,
                         "its gradient in G's shift, added to every fake, is -w")
        fake_y = _batch(1.0, n=2)
        fake_y[:, 0, 0, 1] = 2.0
        loss_y = generator_loss(_LinearCritic(e0, v), fake_y, labels=torch.tensor([0, 1]))
        report.close(_number(loss_y), -2.0, "labels reach the critic: scores 1 and 1 + 2, loss -2")


# --------------------------------------------------------- 3.4: a class-mean latent vector


@check("3.4", "the class-mean latent vector")
def class_vector(report: Report, class_vector: Callable[..., torch.Tensor]) -> None:
    """Hand-computed means with unequal class sizes, and the algebra a difference of means obeys."""
    codes = torch.tensor([[0.0, 0.0], [1.0, 3.0], [2.0, 0.0], [5.0, 5.0], [4.0, 1.0]])
    # The class means: class 0 (2, 1/3), class 1 (1, 3), class 2 (5, 5).
    labels = torch.tensor([0, 1, 0, 2, 0])
    v = class_vector(codes, labels, 0, 1)
    if not report.ok(isinstance(v, torch.Tensor) and v.shape == (2,),
                     "returns one vector of the codes' size", f"got {_shape(v)}"):
        return
    report.close(v, [-1.0, 3 - 1 / 3],
                 "v(0 -> 1) = mean of class 1 - mean of class 0 = (1, 3) - (2, 1/3)")
    report.close(class_vector(codes, labels, 2, 2), [0.0, 0.0], "v(a -> a) = 0")
    with seeded():
        many = torch.randn(200, 16)
        y = torch.randint(0, 4, (200,))
    v01, v12, v02 = (class_vector(many, y, a, b) for a, b in ((0, 1), (1, 2), (0, 2)))
    report.close(class_vector(many, y, 1, 0), -v01, "v(b -> a) = -v(a -> b)")
    report.close(v01 + v12, v02, "v(0 -> 1) + v(1 -> 2) = v(0 -> 2)")
    report.close(class_vector(many + 3.0, y, 0, 1), v01, "shifting every code leaves it unchanged",
                 atol=1e-4)
    try:
        empty = class_vector(codes, labels, 0, 7)
    except ValueError:
        report.ok(True, "a class with no codes raises ValueError")
    else:
        report.ok(False, "a class with no codes raises ValueError",
                  f"got {empty}: a mean over no codes is NaN; raise ValueError naming the class")
