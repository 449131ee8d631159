"""Notebook 04's checks: each passes on the notebook's solution and fails, saying why, on plausible mistakes."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nbhelpers.checks import autoencoders as checks
from nbhelpers.corruptions import gaussian_noise
from nbhelpers.editions import taught
from nbhelpers.exercises import CheckFailed


def failed_lines(check, fn):
    """The FAIL lines (with their details) of a check that must fail on ``fn``."""
    with pytest.raises(CheckFailed) as err:
        check(fn)
    return str(err.value)


@pytest.mark.parametrize("name", ["denoising_step", "mean_std_threshold", "anomaly_report", "generator_loss"])
def test_checks_pass_on_the_solution(name, capsys):
    getattr(checks, name)(taught("04", name))
    assert "all checks passed" in capsys.readouterr().out


# ---------------------------------------------------------------- 4.1


def _step(model, opt, x, target, loss=None):
    loss = (model(x) - target).pow(2).mean() if loss is None else loss
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"loss": loss.item()}


def test_denoising_check_catches_a_noisy_target():
    def against_noisy(model, opt, clean, *, std, seed):
        noisy = gaussian_noise(clean, std=std, seed=seed)
        return _step(model, opt, noisy, noisy)

    text = failed_lines(checks.denoising_step, against_noisy)
    assert "FAIL  identity model: loss = mean((noisy - clean)^2)" in text
    assert "0 means the target was the noisy input" in text


def test_denoising_check_catches_a_clean_input():
    def never_corrupts(model, opt, clean, *, std, seed):
        return _step(model, opt, clean, clean)

    text = failed_lines(checks.denoising_step, never_corrupts)
    assert "FAIL  the model is fed gaussian_noise" in text and "the model saw the clean batch" in text


def test_denoising_check_catches_a_stale_gradient():
    def keeps_old_gradients(model, opt, clean, *, std, seed):
        loss = (model(gaussian_noise(clean, std=std, seed=seed)) - clean).pow(2).mean()
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    text = failed_lines(checks.denoising_step, keeps_old_gradients)
    assert "FAIL  one SGD step" in text and "zero the gradients" in text


# ---------------------------------------------------------------- 4.2


def test_threshold_check_catches_the_sample_std():
    text = failed_lines(checks.mean_std_threshold,
                        lambda losses, k=1.0: float(np.mean(losses) + k * np.std(losses, ddof=1)))
    assert "FAIL  losses 1, 2, 3, 4" in text and "sample std (ddof=1" in text


# ---------------------------------------------------------------- 4.3


def test_report_check_catches_a_strict_comparison():
    solution = taught("04", "anomaly_report")

    def strict(losses, is_anomaly, threshold):  # "loss > threshold": a tie passes as normal
        return solution(losses, is_anomaly, np.nextafter(threshold, np.inf))

    text = failed_lines(checks.anomaly_report, strict)
    assert "FAIL  a loss exactly at the threshold counts as anomalous" in text


def test_report_check_catches_the_anomaly_as_positive_class():
    solution = taught("04", "anomaly_report")

    def one_way(losses, is_anomaly, threshold):
        r = solution(losses, is_anomaly, threshold)
        return r | {"precision": r["anomaly_precision"], "recall": r["anomaly_recall"]}

    text = failed_lines(checks.anomaly_report, one_way)
    assert "FAIL  normal as the positive class" in text and "TN / (TN + FN)" in text


# ---------------------------------------------------------------- 4.4


def _loss(gan_term, l1_term=lambda d: d.abs().mean(), *, detach=False):
    def loss(fake_logits, fake, target, lambda_l1=100.0):
        fake = fake.detach() if detach else fake
        l1 = l1_term(fake - target)
        gan = torch.zeros(()) if fake_logits is None else gan_term(fake_logits)
        return gan + lambda_l1 * l1, gan, l1
    return loss


def _bce(logits, label=1.0, reduction="mean"):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label), reduction=reduction)


def test_generator_loss_check_catches_the_saturating_and_d_losses():
    saturating = _loss(lambda logits: torch.log1p(-torch.sigmoid(logits)).mean())
    text = failed_lines(checks.generator_loss, saturating)
    assert "FAIL  logits ln 3" in text and "saturating" in text
    text = failed_lines(checks.generator_loss, _loss(lambda logits: _bce(logits, label=0.0)))
    assert "FAIL  logits ln 3" in text and "labelled 0" in text


def test_generator_loss_check_catches_l2_sums_and_detaching():
    text = failed_lines(checks.generator_loss, _loss(_bce, lambda d: d.pow(2).mean()))
    assert "FAIL  every pixel off by +-0.5" in text and "mean squared error" in text
    summed = _loss(lambda logits: _bce(logits, reduction="sum"))
    assert "FAIL  D's logits all 0" in failed_lines(checks.generator_loss, summed)
    text = failed_lines(checks.generator_loss, _loss(_bce, detach=True))
    assert "FAIL  the gradient reaches D's logits on G(x) and G(x) itself" in text
