"""Notebook 03's checks: each passes on the notebook's solution and fails, on the right finding,
on plausible wrong answers."""

import pytest
import torch
import torch.nn.functional as F

from nbhelpers.checks import blood_gans
from nbhelpers.editions import taught
from nbhelpers.exercises import CheckFailed, ExerciseNotDone, todo
from nbhelpers.training.gan import call


def solution(name):
    return taught("03", name)


def fails_on(check, *functions, finding):
    """The check raises CheckFailed, and the line of ``finding`` says FAIL."""
    with pytest.raises(CheckFailed) as err:
        check(*functions)
    lines = [line for line in str(err.value).splitlines() if finding in line]
    assert lines and all(line.lstrip().startswith("FAIL") for line in lines), str(err.value)


@pytest.mark.parametrize(("check", "names"), [
    (blood_gans.sharpness, ["sharpness"]),
    (blood_gans.gradient_penalty, ["gradient_penalty"]),
    (blood_gans.wgan_losses, ["wgan_critic_loss", "wgan_generator_loss"]),
    (blood_gans.class_vector, ["class_vector"]),
])
def test_each_check_passes_on_the_solution(check, names, capsys):
    check(*[solution(n) for n in names])
    assert "all checks passed" in capsys.readouterr().out


def test_checks_leave_the_global_random_stream_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    blood_gans.gradient_penalty(solution("gradient_penalty"))
    torch.testing.assert_close(torch.rand(3), expected)


def test_an_unfinished_exercise_says_so():
    def sharpness(images):
        todo("3.1", "sharpness")

    with pytest.raises(ExerciseNotDone, match="Exercise 3.1 is not done yet"):
        blood_gans.sharpness(sharpness)


# ---------------------------------------------------------------- 3.1


def _laplacian(grey):
    kernel = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).view(1, 1, 3, 3)
    return F.conv2d(grey, kernel)


def test_sharpness_wrong_answers():
    def population_variance(images):
        grey = images.mean(1, keepdim=True)
        return _laplacian(grey).var(dim=(1, 2, 3), correction=0).mean().item()

    def channel_sum(images):
        return _laplacian(images.sum(1, keepdim=True)).var(dim=(1, 2, 3)).mean().item()

    def pooled_batch(images):
        return _laplacian(images.mean(1, keepdim=True)).var().item()

    def tensor_out(images):
        return _laplacian(images.mean(1, keepdim=True)).var(dim=(1, 2, 3)).mean()

    fails_on(blood_gans.sharpness, population_variance, finding="one bright pixel on black")
    fails_on(blood_gans.sharpness, channel_sum, finding="grey is the mean over the channels")
    fails_on(blood_gans.sharpness, pooled_batch, finding="a batch [dot, black]")
    fails_on(blood_gans.sharpness, tensor_out, finding="returns a Python float")


# ---------------------------------------------------------------- 3.2


def _penalty(eps_shape=None, *, detach=True, create_graph=True, per_sample_norm=True):
    """A gradient penalty with one deliberate mistake, chosen by the arguments."""

    def gradient_penalty(critic, real, fake, labels=None):
        shape = eps_shape(real) if eps_shape else (real.shape[0], 1, 1, 1)
        eps = torch.rand(shape)
        x_hat = (eps * real + (1 - eps) * (fake.detach() if detach else fake)).requires_grad_(True)
        scores = call(critic, x_hat, labels).sum()
        (grad,) = torch.autograd.grad(scores, x_hat, create_graph=create_graph)
        norm = grad.flatten(1).norm(2, dim=1) if per_sample_norm else grad.norm()
        return ((norm - 1) ** 2).mean()

    return gradient_penalty


def test_gradient_penalty_wrong_answers():
    fails_on(blood_gans.gradient_penalty, _penalty(per_sample_norm=False),
             finding="linear critic with ||w|| = 5")
    fails_on(blood_gans.gradient_penalty, _penalty(create_graph=False),
             finding="its gradient in the critic's weights")
    fails_on(blood_gans.gradient_penalty, _penalty(lambda real: (1, 1, 1, 1)),
             finding="eps is drawn afresh for each sample")
    fails_on(blood_gans.gradient_penalty, _penalty(lambda real: real.shape),
             finding="one eps per sample")
    fails_on(blood_gans.gradient_penalty, _penalty(detach=False),
             finding="no gradient reaches the generator")


# ---------------------------------------------------------------- 3.3


def test_wgan_losses_wrong_answers():
    gp = solution("gradient_penalty")
    right_c, right_g = solution("wgan_critic_loss"), solution("wgan_generator_loss")

    def signs_swapped(critic, real, fake, *, gp_weight, labels=None):
        estimate = call(critic, fake.detach(), labels).mean() - call(critic, real, labels).mean()
        penalty = gp(critic, real, fake, labels)
        return -estimate + gp_weight * penalty, estimate, penalty

    def fake_not_detached(critic, real, fake, *, gp_weight, labels=None):
        estimate = call(critic, real, labels).mean() - call(critic, fake, labels).mean()
        penalty = gp(critic, real, fake, labels)
        return -estimate + gp_weight * penalty, estimate, penalty

    def fixed_weight(critic, real, fake, *, gp_weight, labels=None):
        estimate = call(critic, real, labels).mean() - call(critic, fake.detach(), labels).mean()
        penalty = gp(critic, real, fake, labels)
        return -estimate + 10 * penalty, estimate, penalty

    def g_detached(critic, fake, labels=None):
        return -call(critic, fake.detach(), labels).mean()

    def g_sign(critic, fake, labels=None):
        return call(critic, fake, labels).mean()

    fails_on(blood_gans.wgan_losses, signs_swapped, right_g, finding="||w|| = 1 critic scoring")
    fails_on(blood_gans.wgan_losses, fake_not_detached, right_g,
             finding="the critic loss sends no gradient to the generator")
    fails_on(blood_gans.wgan_losses, fixed_weight, right_g, finding="gp_weight scales the penalty")
    fails_on(blood_gans.wgan_losses, right_c, g_detached,
             finding="the generator loss reaches the generator")
    fails_on(blood_gans.wgan_losses, right_c, g_sign, finding="generator loss -4")


# ---------------------------------------------------------------- 3.4


def test_class_vector_wrong_answers():
    def reversed_sign(codes, labels, a, b):
        return codes[labels == a].mean(0) - codes[labels == b].mean(0)

    def against_the_overall_mean(codes, labels, a, b):
        return codes[labels == b].mean(0) - codes.mean(0)

    def no_empty_check(codes, labels, a, b):
        return codes[labels == b].mean(0) - codes[labels == a].mean(0)

    fails_on(blood_gans.class_vector, reversed_sign, finding="v(0 -> 1) = mean")
    fails_on(blood_gans.class_vector, against_the_overall_mean, finding="v(a -> a) = 0")
    fails_on(blood_gans.class_vector, no_empty_check,
             finding="a class with no codes raises ValueError")
