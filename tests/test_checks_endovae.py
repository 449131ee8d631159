"""Notebook 02's checks: each passes on the notebook's solution and fails, on the right finding,
on plausible wrong answers."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.covariance import LedoitWolf
from sklearn.metrics import roc_auc_score

from nbhelpers.checks import endovae
from nbhelpers.editions import taught
from nbhelpers.exercises import CheckFailed, ExerciseNotDone, todo


def solution(name):
    return taught("02", name)


def fails_on(check, *functions, finding):
    """The check raises CheckFailed, and the line of ``finding`` says FAIL."""
    with pytest.raises(CheckFailed) as err:
        check(*functions)
    lines = [line for line in str(err.value).splitlines() if finding in line]
    assert lines and all(line.lstrip().startswith("FAIL") for line in lines), str(err.value)
    return str(err.value)


@pytest.mark.parametrize(("check", "name"), [
    (endovae.bce_excess, "bce_excess"),
    (endovae.feature_mahalanobis, "feature_mahalanobis"),
    (endovae.error_maps, "error_maps"),
    (endovae.pixel_auroc, "pixel_auroc"),
])
def test_each_check_passes_on_the_solution(check, name, capsys):
    check(solution(name))
    assert "all checks passed" in capsys.readouterr().out


def test_checks_leave_the_global_random_stream_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    endovae.bce_excess(solution("bce_excess"))
    endovae.error_maps(solution("error_maps"))
    torch.testing.assert_close(torch.rand(3), expected)


def test_an_unfinished_exercise_says_so():
    def bce_excess(recon, images):
        todo("2.1", "bce_excess")

    with pytest.raises(ExerciseNotDone, match="Exercise 2.1 is not done yet"):
        endovae.bce_excess(bce_excess)


# ---------------------------------------------------------------- 2.1


def test_bce_excess_check_catches_the_plain_bce():
    """The write-ups' score: BCE with its floor still in."""

    def plain_bce(recon, images):
        return F.binary_cross_entropy(recon.clamp(1e-6, 1 - 1e-6), images, reduction="none").flatten(1).mean(1)

    text = fails_on(endovae.bce_excess, plain_bce, finding="zero when the reconstruction equals the image")
    assert "subtract the binary entropy" in text


def test_bce_excess_check_catches_swapped_arguments_and_a_sum():
    right = solution("bce_excess")
    fails_on(endovae.bce_excess, lambda recon, images: right(images, recon), finding="x = 0.5 reconstructed as 0.25")
    text = fails_on(endovae.bce_excess, lambda recon, images: right(recon, images) * images[0].numel(),
                    finding="x = 0.5 reconstructed as 0.25")
    assert "not their sum" in text


def test_bce_excess_check_catches_unclamped_logarithms_and_in_place_clamps():
    def unclamped(recon, images):  # right inside (0, 1), but 1 / 0 and 0 / 0 at the edges
        kl = torch.xlogy(images, images / recon) + torch.xlogy(1 - images, (1 - images) / (1 - recon))
        return kl.flatten(1).mean(1)

    fails_on(endovae.bce_excess, unclamped, finding="finite for black and white pixels")

    def in_place(recon, images):
        images.clamp_(1e-6, 1 - 1e-6)
        return solution("bce_excess")(recon, images)

    fails_on(endovae.bce_excess, in_place, finding="leaves the images unchanged")


# ---------------------------------------------------------------- 2.2


def _levels(train_levels, levels, fit_on=None):
    """A per-depth loop over (train, feats, gauss), for the wrong answers below."""
    for train, feats in zip(train_levels, levels, strict=True):
        data = np.asarray(feats if fit_on == "scored" else train, dtype=np.float64)
        yield np.asarray(feats, dtype=np.float64), LedoitWolf().fit(data)


def test_feature_mahalanobis_check_catches_a_missing_division_by_d():
    def undivided(train_levels, levels):
        total = 0.0
        for f, g in _levels(train_levels, levels):
            d = f - g.location_
            total = total + np.einsum("ij,jk,ik->i", d, g.precision_, d)
        return total

    text = fails_on(endovae.feature_mahalanobis, undivided, finding="identity covariance")
    assert "dimension d" in text


@pytest.mark.filterwarnings("ignore::UserWarning")  # sklearn on the wrong answer
def test_feature_mahalanobis_check_catches_a_gaussian_fitted_on_the_scored_images():
    def fitted_on_test(train_levels, levels):
        total = 0.0
        for f, g in _levels(train_levels, levels, fit_on="scored"):
            d = f - g.location_
            total = total + np.einsum("ij,jk,ik->i", d, g.precision_, d) / d.shape[1]
        return total

    fails_on(endovae.feature_mahalanobis, fitted_on_test, finding="a point at the training mean scores 0")


def test_feature_mahalanobis_check_catches_the_euclidean_distance():
    def euclidean(train_levels, levels):
        total = 0.0
        for f, g in _levels(train_levels, levels):
            total = total + ((f - g.location_) ** 2).sum(1) / f.shape[1]
        return total

    fails_on(endovae.feature_mahalanobis, euclidean, finding="distance in the normals' own spread")


def test_feature_mahalanobis_check_catches_the_unbiased_covariance():
    def sample_covariance(train_levels, levels):
        total = 0.0
        for train, feats in zip(train_levels, levels, strict=True):
            t, f = np.asarray(train, dtype=np.float64), np.asarray(feats, dtype=np.float64)
            d = f - t.mean(0)
            total = total + np.einsum("ij,jk,ik->i", d, np.linalg.pinv(np.cov(t, rowvar=False)), d) / d.shape[1]
        return total

    text = fails_on(endovae.feature_mahalanobis, sample_covariance, finding="identity covariance")
    assert "LedoitWolf" in text


# ---------------------------------------------------------------- 2.3


def test_error_maps_check_catches_the_absolute_error_and_a_channel_sum():
    fails_on(endovae.error_maps, lambda images, recon, sigma=0.0: (images - recon).abs().mean(1, keepdim=True),
             finding="errors (0.1, -0.2, 0.3)")
    fails_on(endovae.error_maps, lambda images, recon, sigma=0.0: (images - recon).pow(2).sum(1, keepdim=True),
             finding="errors (0.1, -0.2, 0.3)")


def test_error_maps_check_catches_zero_padding_and_an_ignored_sigma():
    right = solution("error_maps")

    def zero_padded(images, recon, sigma=0.0):
        err = right(images, recon)
        if sigma > 0:  # a normalised 9x9 Gaussian, zero-padded
            g = torch.exp(-torch.arange(-4.0, 5.0) ** 2 / (2 * sigma ** 2))
            g = g / g.sum()
            err = F.conv2d(err, (g[:, None] * g[None, :])[None, None], padding=4)
        return err

    fails_on(endovae.error_maps, zero_padded, finding="keeps a uniform error uniform")
    fails_on(endovae.error_maps, lambda images, recon, sigma=0.0: right(images, recon),
             finding="spreads it onto the neighbouring pixels")


# ---------------------------------------------------------------- 2.4


@pytest.mark.filterwarnings("ignore::UserWarning")  # sklearn on the wrong answer
def test_pixel_auroc_check_catches_unbinarised_masks_and_a_mean_over_images():
    def soft_labels(maps, masks):
        return float(roc_auc_score(torch.as_tensor(masks).flatten().numpy() != 0, torch.as_tensor(maps).flatten()))

    fails_on(endovae.pixel_auroc, soft_labels, finding="mask values above 0.5 are polyp")

    right = solution("pixel_auroc")

    def per_image_mean(maps, masks):
        return float(np.mean([right(m, k) for m, k in zip(maps, masks, strict=True)]))

    fails_on(endovae.pixel_auroc, per_image_mean, finding="pools the pixels of all images")
