"""Notebook 05's checks pass on its solutions and fail, with the right finding, on plausible mistakes."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nbhelpers.checks import mnist_gan_vae as checks
from nbhelpers.editions import taught
from nbhelpers.exercises import CheckFailed, ExerciseNotDone, todo
from nbhelpers.latent import sample_noise
from nbhelpers.training.gan import call


def solution(name):
    return taught("05", name)


def failed(check, *functions):
    """The FAIL lines of a check that must fail."""
    with pytest.raises(CheckFailed) as err:
        check(*functions)
    return [line for line in str(err.value).splitlines() if "FAIL" in line]


def assert_fails_on(check, functions, finding):
    lines = failed(check, *functions)
    assert any(finding in line for line in lines), lines


@pytest.mark.parametrize(("check", "names"), [
    (checks.gan_step, ["gan_step"]),
    (checks.slerp, ["slerp"]),
    (checks.active_units, ["active_units"]),
    (checks.anomaly_decision, ["validation_threshold", "detection_counts"]),
])
def test_every_check_passes_on_the_solution(check, names, capsys):
    check(*map(solution, names))
    out = capsys.readouterr().out
    assert "all checks passed" in out and "FAIL" not in out


def test_an_unfinished_exercise_says_so():
    def gan_step(*args, **kwargs):
        todo("5.1", "gan_step")

    with pytest.raises(ExerciseNotDone, match="Exercise 5.1 is not done yet"):
        checks.gan_step(gan_step)


# --- 5.1: a parametrised GAN step with one mistake at a time --------------------------------------

def wrong_gan_step(*, detach=True, saturating=False, step_d_again=False, zero_grads=True, half_d=False):
    def step(G, D, opt_g, opt_d, real, *, latent_dim, labels=None):
        z = sample_noise(len(real), latent_dim, device=real.device)
        if zero_grads:
            opt_d.zero_grad()
        fake = call(G, z, labels)
        lr, lf = call(D, real, labels), call(D, fake.detach() if detach else fake, labels)
        loss_d = (F.binary_cross_entropy_with_logits(lr, torch.ones_like(lr))
                  + F.binary_cross_entropy_with_logits(lf, torch.zeros_like(lf))) * (0.5 if half_d else 1)
        loss_d.backward()
        opt_d.step()
        if zero_grads:
            opt_g.zero_grad()
        lg = call(D, call(G, z, labels), labels)
        if saturating:  # minimise log(1 - D(G(z))), the minimax form
            loss_g = -F.binary_cross_entropy_with_logits(lg, torch.zeros_like(lg))
        else:
            loss_g = F.binary_cross_entropy_with_logits(lg, torch.ones_like(lg))
        loss_g.backward()
        opt_g.step()
        if step_d_again:
            opt_d.step()
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item(),
                "d_real": torch.sigmoid(lr).mean().item(), "d_fake": torch.sigmoid(lf).mean().item()}

    return step


def test_the_mistake_free_variant_passes():
    checks.gan_step(wrong_gan_step())  # so each test below fails for its one mistake only


@pytest.mark.parametrize(("mistake", "finding"), [
    ({"detach": False}, "no gradient reaches G during the D update"),
    ({"saturating": True}, "loss_g is the non-saturating"),
    ({"saturating": True}, "loss_g = BCE(0, 1) = ln 2"),
    ({"step_d_again": True}, "each exactly once"),
    ({"zero_grads": False}, "gradients are zeroed before each backward pass"),
    ({"half_d": True}, "loss_d = BCE(0, 1) + BCE(0, 0) = 2 ln 2"),
])
def test_gan_step_check_catches(mistake, finding):
    assert_fails_on(checks.gan_step, [wrong_gan_step(**mistake)], finding)


def test_gan_step_check_catches_labels_left_out_and_a_fixed_noise():
    right = solution("gan_step")

    def unconditional(G, D, opt_g, opt_d, real, *, latent_dim, labels=None):
        return right(G, D, opt_g, opt_d, real, latent_dim=latent_dim)

    assert_fails_on(checks.gan_step, [unconditional], "with labels, G and D are called with them")

    def same_noise(G, D, opt_g, opt_d, real, *, latent_dim, labels=None):
        torch.manual_seed(0)  # resets the global generator: every step draws the same z
        return right(G, D, opt_g, opt_d, real, latent_dim=latent_dim, labels=labels)

    assert_fails_on(checks.gan_step, [same_noise], "a different seed draws different noise")


# --- 5.2 ---------------------------------------------------------------------------------------------

def test_slerp_check_catches_a_missing_fallback_and_an_unscaled_arc():
    def no_fallback(a, b, steps):
        ua, ub = a / a.norm(), b / b.norm()
        omega = torch.arccos((ua * ub).sum().clamp(-1, 1))
        t = torch.linspace(0, 1, steps, dtype=a.dtype).view(-1, 1)
        return ((torch.sin((1 - t) * omega) * ua + torch.sin(t * omega) * ub) / torch.sin(omega)
                * ((1 - t) * a.norm() + t * b.norm()))

    assert_fails_on(checks.slerp, [no_fallback], "nearly parallel vectors give no NaN")

    def raw_vectors(a, b, steps):  # the great-circle weights applied to a and b, norms not interpolated
        omega = torch.arccos((a / a.norm() * b / b.norm()).sum().clamp(-1, 1))
        t = torch.linspace(0, 1, steps, dtype=a.dtype).view(-1, 1)
        return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)

    assert_fails_on(checks.slerp, [raw_vectors], "the norm moves linearly along the path")
    linear = lambda a, b, steps: torch.stack([a + (b - a) * t for t in torch.linspace(0, 1, steps)])  # noqa: E731
    assert_fails_on(checks.slerp, [linear], "every point has norm 1")


# --- 5.3 ---------------------------------------------------------------------------------------------

def test_active_units_check_catches_the_variance_over_the_wrong_axis():
    assert_fails_on(checks.active_units, [lambda mu, threshold=0.01: int((mu.var(1) > threshold).sum())],
                    "2 active at the default 0.01")
    assert_fails_on(checks.active_units, [lambda mu, threshold=0.01: (mu.var(0) > 0.01).sum()],
                    "returns a Python int")
    assert_fails_on(checks.active_units, [lambda mu, threshold=0.01: int((mu.var(0) > 0.01).sum())],
                    "the threshold argument is used")


# --- 5.4 ---------------------------------------------------------------------------------------------

def test_anomaly_check_catches_the_wrong_quantile_and_the_wrong_comparison():
    counts = solution("detection_counts")
    assert_fails_on(checks.anomaly_decision, [lambda s, fpr: float(np.quantile(s, fpr)), counts],
                    "the threshold is the 95% quantile")

    def strict(is_anomaly, scores, threshold):  # flags score > threshold: ties go the wrong way
        return counts(is_anomaly, np.nextafter(np.asarray(scores, float), -np.inf), threshold)

    assert_fails_on(checks.anomaly_decision, [solution("validation_threshold"), strict],
                    "a score equal to the threshold is flagged")

    def swapped(is_anomaly, scores, threshold):  # precision and recall the wrong way round
        r = counts(is_anomaly, scores, threshold)
        return r | {"precision": r["recall"], "recall": r["precision"]}

    assert_fails_on(checks.anomaly_decision, [solution("validation_threshold"), swapped], "precision = TP")

    def normal_positive(is_anomaly, scores, threshold):  # counts a normal image as the positive class
        return counts(1 - np.asarray(is_anomaly), scores, threshold)

    assert_fails_on(checks.anomaly_decision, [solution("validation_threshold"), normal_positive],
                    "a hand case: TP 4")


def test_anomaly_check_survives_a_division_by_zero():
    counts = solution("detection_counts")

    def unguarded(is_anomaly, scores, threshold):
        r = counts(is_anomaly, scores, threshold)
        return r | {"precision": r["tp"] / (r["tp"] + r["fp"])}

    assert_fails_on(checks.anomaly_decision, [solution("validation_threshold"), unguarded],
                    "your function runs on the check's inputs")
