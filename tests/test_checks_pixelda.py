"""The checks of notebook 01's exercises: they pass on the notebook's solutions and catch plausible mistakes."""

import re

import pytest
import torch
import torch.nn.functional as F

from nbhelpers import checks
from nbhelpers.editions import taught
from nbhelpers.exercises import CheckFailed, ExerciseNotDone, todo

NAMES = ["discriminator_loss", "task_loss", "generator_loss", "pseudo_labels"]


@pytest.mark.parametrize("name", NAMES)
def test_each_check_passes_on_the_notebooks_solution(name, capsys):
    getattr(checks.pixelda, name)(taught("01", name))
    assert "all checks passed" in capsys.readouterr().out


@pytest.mark.parametrize("name", NAMES)
def test_an_unfinished_exercise_says_so(name):
    with pytest.raises(ExerciseNotDone, match="not done yet"):
        getattr(checks.pixelda, name)(lambda *args, **kwargs: todo("1.x", name))


def _bce(logits, label):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label))


def d_loss_without_detach(D, target, adapted):
    real, fake = D(target), D(adapted)
    return _bce(real, 1.0) + _bce(fake, 0.0), real, fake


def d_loss_labels_swapped(D, target, adapted):
    real, fake = D(target), D(adapted.detach())
    return _bce(real, 0.0) + _bce(fake, 1.0), real, fake


def d_loss_summed_over_the_batch(D, target, adapted):
    real, fake = D(target), D(adapted.detach())
    return len(real) * (_bce(real, 1.0) + _bce(fake, 0.0)), real, fake


@pytest.mark.parametrize("wrong, finding", [
    (d_loss_without_detach, "FAIL  no gradient reaches G"),
    (d_loss_labels_swapped, "FAIL  D(target) = 3/4"),
    (d_loss_summed_over_the_batch, "FAIL  a D that cannot tell"),
])
def test_discriminator_loss_check_catches(wrong, finding):
    with pytest.raises(CheckFailed, match=re.escape(finding)):
        checks.pixelda.discriminator_loss(wrong)


def t_loss_translations_only(T, source, labels, adapted):
    logits = T(adapted.detach())
    return F.cross_entropy(logits, labels), logits


def t_loss_without_detach(T, source, labels, adapted):
    logits = T(adapted)
    return F.cross_entropy(T(source), labels) + F.cross_entropy(logits, labels), logits


def t_loss_under_no_grad(T, source, labels, adapted):
    with torch.no_grad():
        logits = T(adapted)
        return F.cross_entropy(T(source), labels) + F.cross_entropy(logits, labels), logits


@pytest.mark.parametrize("wrong, finding", [
    (t_loss_translations_only, "FAIL  a T with equal logits"),
    (t_loss_without_detach, "FAIL  no gradient reaches G"),
    (t_loss_under_no_grad, "FAIL  the gradient reaches T"),
])
def test_task_loss_check_catches(wrong, finding):
    with pytest.raises(CheckFailed, match=re.escape(finding)):
        checks.pixelda.task_loss(wrong)


def g_loss_saturating(D, T, adapted, labels, *, alpha=1.0, beta=1.0):
    adversarial = -_bce(D(adapted), 0.0)  # minimises log(1 - D(G(x))): the minimax form
    return alpha * adversarial + beta * F.cross_entropy(T(adapted), labels), adversarial


def g_loss_detached(D, T, adapted, labels, *, alpha=1.0, beta=1.0):
    adapted = adapted.detach()
    adversarial = _bce(D(adapted), 1.0)
    return alpha * adversarial + beta * F.cross_entropy(T(adapted), labels), adversarial


def g_loss_weights_swapped(D, T, adapted, labels, *, alpha=1.0, beta=1.0):
    adversarial = _bce(D(adapted), 1.0)
    return beta * adversarial + alpha * F.cross_entropy(T(adapted), labels), adversarial


@pytest.mark.parametrize("wrong, finding", [
    (g_loss_saturating, "FAIL  D(translation) = 1/4"),
    (g_loss_detached, "FAIL  the gradient reaches G"),
    (g_loss_weights_swapped, "FAIL  alpha = 2, beta = 0.5"),
])
def test_generator_loss_check_catches(wrong, finding):
    with pytest.raises(CheckFailed, match=re.escape(finding)):
        checks.pixelda.generator_loss(wrong)


def pseudo_on_raw_logits(logits, threshold):
    confidence, labels = logits.max(1)
    return labels, confidence, confidence >= threshold


def pseudo_strictly_above(logits, threshold):
    confidence, labels = logits.softmax(1).max(1)
    return labels, confidence, confidence > threshold


def pseudo_softmax_over_images(logits, threshold):
    confidence, labels = logits.softmax(0).max(1)
    return labels, confidence, confidence >= threshold


@pytest.mark.parametrize("wrong, finding", [
    (pseudo_on_raw_logits, "FAIL  confidence is the softmax probability"),
    (pseudo_strictly_above, "FAIL  an image exactly at the threshold is kept"),
    (pseudo_softmax_over_images, "FAIL  confidence is the softmax probability"),
])
def test_pseudo_labels_check_catches(wrong, finding):
    with pytest.raises(CheckFailed, match=re.escape(finding)):
        checks.pixelda.pseudo_labels(wrong)


def test_a_function_that_raises_is_a_finding_not_a_traceback():
    def broken(D, target, adapted):
        raise RuntimeError("shapes do not match")

    with pytest.raises(CheckFailed, match="it raised RuntimeError: shapes do not match"):
        checks.pixelda.discriminator_loss(broken)
