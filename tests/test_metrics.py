"""Metrics against values computed by hand."""

import math

import numpy as np
import pytest
import torch

from nbhelpers import metrics


def test_mse_and_psnr_of_a_constant_offset():
    x = torch.zeros(2, 3, 8, 8)
    y = torch.full((2, 3, 8, 8), 0.1)
    np.testing.assert_allclose(metrics.mse(x, y), [0.01, 0.01])
    np.testing.assert_allclose(metrics.psnr(x, y), [20.0, 20.0])  # 10 log10(1 / 0.01)


def test_ssim_is_one_for_identical_images_and_lower_for_noise():
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(metrics.ssim(x, x), [1.0, 1.0])
    noisy = (x + 0.3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    assert (metrics.ssim(x, noisy) < 0.9).all()


def test_roc_auc_of_the_classic_example():
    # Pairs (positive, negative) ranked right: (0.35>0.1), (0.8>0.1), (0.8>0.4); wrong: (0.35<0.4) -> 3/4
    assert metrics.roc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])["auc"] == 0.75


def test_average_precision_by_hand():
    # Ranked: 0.8 (pos, P=1), 0.4 (neg), 0.35 (pos, P=2/3) -> AP = (1 + 2/3) / 2
    assert metrics.pr([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])["auc_pr"] == pytest.approx(5 / 6)


def test_thresholds_separate_separable_scores():
    y = [0, 0, 0, 1, 1]
    s = [0.1, 0.2, 0.3, 0.7, 0.9]
    assert metrics.choose_threshold(y, s, "youden") == 0.7
    assert metrics.choose_threshold(y, s, "f1") == 0.7
    with pytest.raises(ValueError):
        metrics.choose_threshold(y, s, "magic")


def test_choose_threshold_refuses_labels_of_one_class_with_a_message():
    for method in ("youden", "f1"):
        with pytest.raises(ValueError, match="only \\[0\\] in 3 labels.*Fix: give the validation split anomalies"):
            metrics.choose_threshold([0, 0, 0], [0.1, 0.2, 0.3], method)
    with pytest.raises(ValueError, match=r"only \[1\]"):
        metrics.choose_threshold([1, 1], [0.5, 0.9])


def test_binary_report_counts_by_hand():
    y = [0, 0, 1, 1, 1, 0]
    s = [0.2, 0.6, 0.7, 0.4, 0.9, 0.1]
    r = metrics.binary_report(y, s, threshold=0.5)  # predicted positive: 0.6, 0.7, 0.9
    assert (r["tp"], r["fp"], r["tn"], r["fn"]) == (2, 1, 2, 1)
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["precision"] == pytest.approx(2 / 3)
    assert r["recall"] == pytest.approx(2 / 3)
    assert r["f1"] == pytest.approx(2 / 3)


def test_detection_report_takes_the_threshold_from_validation():
    y_val, s_val = np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.6, 0.7])
    y_test, s_test = np.array([0, 0, 1, 1]), np.array([0.5, 0.65, 0.55, 0.9])
    r = metrics.detection_report(y_val, s_val, y_test, s_test)
    assert r["threshold"] == 0.6 and r["val_auc_roc"] == 1.0
    # At 0.6 on test: 0.65 is a false positive, 0.55 a miss, 0.9 a hit.
    assert (r["precision"], r["recall"], r["accuracy"]) == (0.5, 0.5, 0.5)
    assert r["auc_roc"] == 0.75
    # Test labels that would move the threshold do not: it is the validation one.
    assert metrics.detection_report(y_val, s_val, 1 - y_test, s_test)["threshold"] == 0.6


def test_auc_standard_error_by_hand():
    # Hanley & McNeil at AUC 0.5: Q1 = Q2 = 1/3, so var = (1/4 + (n1 + n2 - 2) / 12) / (n1 n2).
    assert metrics.auc_standard_error(0.5, 10, 10) == pytest.approx(math.sqrt((0.25 + 18 / 12) / 100))
    assert metrics.auc_standard_error(1.0, 10, 10) == 0.0
    assert metrics.auc_standard_error(0.8, 100, 100) < metrics.auc_standard_error(0.8, 10, 10)


def test_accuracy_and_confusion():
    y, p = [0, 1, 2, 2], [0, 2, 2, 2]
    assert metrics.accuracy(y, p) == 0.75
    np.testing.assert_array_equal(metrics.confusion(y, p, 3), [[1, 0, 0], [0, 0, 1], [0, 0, 2]])


def test_frechet_distance_between_known_gaussians():
    # a: mean 0, covariance (2/3) I; b = 2a + (3, 4): mean (3, 4), covariance (8/3) I.
    # FD = |mu|^2 + tr(Sa + Sb - 2 (Sa Sb)^1/2) = 25 + 2(2/3 + 8/3 - 2 * 4/3) = 25 + 4/3
    a = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    b = 2 * a + np.array([3.0, 4.0])
    assert metrics.frechet_distance(a, b) == pytest.approx(25 + 4 / 3)
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


def test_mahalanobis_on_a_constructed_case():
    # Train set: +-2 along x, +-1 along y -> covariance diag(8/3, 2/3) (n-1 normalisation).
    train = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    d = metrics.mahalanobis(train, np.array([[4.0, 0.0], [0.0, 2.0]]), ridge=0.0)
    np.testing.assert_allclose(d, [4 / math.sqrt(8 / 3), 2 / math.sqrt(2 / 3)])
