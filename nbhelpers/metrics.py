"""Metrics: image quality, detection, classification and distribution distances.

Everything takes numpy arrays or torch tensors and returns numpy values or floats. Image metrics
come from scikit-image and detection metrics from scikit-learn, so they match what papers report.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy import linalg
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from sklearn import metrics as skm

ArrayLike = Any  # np.ndarray | torch.Tensor | list


def _np(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _images(x: ArrayLike) -> np.ndarray:
    """(N, C, H, W) -> (N, H, W, C) float64 for scikit-image."""
    x = _np(x).astype(np.float64)
    if x.ndim != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {x.shape}")
    return x.transpose(0, 2, 3, 1)


def mse(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """Mean squared error per image."""
    d = _np(x).astype(np.float64) - _np(y).astype(np.float64)
    return (d ** 2).reshape(len(d), -1).mean(1)


def psnr(x: ArrayLike, y: ArrayLike, data_range: float = 1.0) -> np.ndarray:
    """Peak signal-to-noise ratio per image, 10 log10(MAX^2 / MSE), in dB."""
    a, b = _images(x), _images(y)
    return np.array([peak_signal_noise_ratio(p, q, data_range=data_range) for p, q in zip(a, b, strict=True)])


def ssim(x: ArrayLike, y: ArrayLike, data_range: float = 1.0) -> np.ndarray:
    """Structural similarity per image (Wang et al. 2004; scikit-image's defaults, 7x7 window)."""
    a, b = _images(x), _images(y)
    return np.array([
        structural_similarity(p, q, data_range=data_range, channel_axis=-1) for p, q in zip(a, b, strict=True)
    ])


def roc(y_true: ArrayLike, scores: ArrayLike) -> dict[str, Any]:
    """ROC curve and its area; higher scores mean 'positive' (anomalous)."""
    fpr, tpr, thresholds = skm.roc_curve(_np(y_true), _np(scores))
    return {"auc": float(skm.roc_auc_score(_np(y_true), _np(scores))), "fpr": fpr, "tpr": tpr,
            "thresholds": thresholds}


def auc_standard_error(auc: float, n_positive: int, n_negative: int) -> float:
    """Standard error of an AUC-ROC from the class sizes (Hanley & McNeil, Radiology 1982).

    A yardstick for comparing two detectors on one test set: a difference of less than about
    twice this is within what another draw of the same number of images could give.
    """
    q1, q2 = auc / (2 - auc), 2 * auc ** 2 / (1 + auc)
    var = (auc * (1 - auc) + (n_positive - 1) * (q1 - auc ** 2)
           + (n_negative - 1) * (q2 - auc ** 2)) / (n_positive * n_negative)
    return float(np.sqrt(var))


def pr(y_true: ArrayLike, scores: ArrayLike) -> dict[str, Any]:
    """Precision-recall curve; ``auc_pr`` is the average precision."""
    precision, recall, thresholds = skm.precision_recall_curve(_np(y_true), _np(scores))
    return {"auc_pr": float(skm.average_precision_score(_np(y_true), _np(scores))),
            "precision": precision, "recall": recall, "thresholds": thresholds}


def choose_threshold(y_true: ArrayLike, scores: ArrayLike, method: str = "youden") -> float:
    """The score cut (``score >= t`` is positive) that maximises Youden's J = TPR - FPR, or F1.

    Choose it on validation data and apply it to test data: a threshold picked on the test set
    makes the test numbers optimistic.
    """
    y, s = _np(y_true), _np(scores)
    present = np.unique(y)
    if len(present) != 2:
        raise ValueError(f"choose_threshold needs both classes among the labels it chooses on, but found only "
                         f"{present.tolist()} in {len(y)} labels: no cut can be judged without positives and "
                         "negatives. Fix: give the validation split anomalies as well as normals.")
    if method == "youden":
        fpr, tpr, thresholds = skm.roc_curve(y, s)
        return float(thresholds[np.argmax(tpr - fpr)])
    if method == "f1":
        precision, recall, thresholds = skm.precision_recall_curve(y, s)
        f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
        return float(thresholds[np.argmax(f1)])
    raise ValueError(f"threshold method must be 'youden' or 'f1', not {method!r}")


def binary_report(y_true: ArrayLike, scores: ArrayLike, threshold: float) -> dict[str, float]:
    """Accuracy, precision, recall, F1 and the confusion counts at ``score >= threshold``."""
    y = _np(y_true).astype(int)
    pred = (_np(scores) >= threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    return {
        "accuracy": float(skm.accuracy_score(y, pred)),
        "precision": float(skm.precision_score(y, pred, zero_division=0)),
        "recall": float(skm.recall_score(y, pred, zero_division=0)),
        "f1": float(skm.f1_score(y, pred, zero_division=0)),
        "tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn),
    }


def detection_report(val_labels: ArrayLike, val_scores: ArrayLike, test_labels: ArrayLike,
                     test_scores: ArrayLike, *, method: str = "youden") -> dict[str, float]:
    """AUC-ROC and AUC-PR on test, and accuracy/precision/recall/F1 at a threshold chosen on validation.

    The test labels never reach :func:`choose_threshold`, so the test numbers stay honest.
    """
    threshold = choose_threshold(val_labels, val_scores, method)
    report = binary_report(test_labels, test_scores, threshold)
    return {"val_auc_roc": roc(val_labels, val_scores)["auc"],
            "auc_roc": roc(test_labels, test_scores)["auc"],
            "auc_pr": pr(test_labels, test_scores)["auc_pr"],
            "threshold": threshold,
            **{k: report[k] for k in ("accuracy", "precision", "recall", "f1")}}


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of predictions equal to the labels."""
    return float(skm.accuracy_score(_np(y_true), _np(y_pred)))


def confusion(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> np.ndarray:
    """Confusion matrix, rows = true class, columns = predicted class."""
    return skm.confusion_matrix(_np(y_true), _np(y_pred), labels=list(range(n_classes)))


def frechet_distance(feats_a: ArrayLike, feats_b: ArrayLike) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (Dowson & Landau 1982).

    ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)). With Inception-v3 pool features this
    is FID (Heusel et al. 2017); with any other network's features it is *not* FID and must not
    be compared with published FIDs.
    """
    a, b = _np(feats_a).astype(np.float64), _np(feats_b).astype(np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(covmean).all():  # near-singular product: regularise as the FID reference code does
        eps = 1e-6 * np.eye(len(cov_a))
        covmean = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    covmean = covmean.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean))


def mahalanobis(train_feats: ArrayLike, feats: ArrayLike, ridge: float = 1e-3) -> np.ndarray:
    """Distance of each row of ``feats`` to a Gaussian fitted on ``train_feats``.

    A small ridge on the covariance keeps it invertible when there are fewer samples than
    dimensions, as with 128-d latents and a few hundred training images.
    """
    t, f = _np(train_feats).astype(np.float64), _np(feats).astype(np.float64)
    mean = t.mean(0)
    cov = np.cov(t, rowvar=False) + ridge * np.eye(t.shape[1])
    d = f - mean
    return np.sqrt(np.einsum("ij,jk,ik->i", d, np.linalg.inv(cov), d))
