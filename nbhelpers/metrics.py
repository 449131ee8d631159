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
from sklearn.covariance import LedoitWolf

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


def multi_level_mahalanobis(train_levels: list[ArrayLike], levels: list[ArrayLike]) -> np.ndarray:
    """Sum over feature levels of the squared Mahalanobis distance to each level's training Gaussian.

    After Rippel et al., "Modeling the Distribution of Normal Data in Pre-Trained Deep Features for
    Anomaly Detection" (ICPR 2020): one Gaussian per network depth, fitted with Ledoit-Wolf
    shrinkage because a level may have more dimensions than there are training images. Each
    level's squared distance is divided by its dimension d, the mean of the chi-square(d) it
    follows under the Gaussian, so that wide and narrow levels weigh alike.
    """
    if len(train_levels) != len(levels):
        raise ValueError(f"{len(train_levels)} training levels but {len(levels)} levels to score")
    total = 0.0
    for train, feats in zip(train_levels, levels, strict=True):
        gauss = LedoitWolf().fit(_np(train).astype(np.float64))
        d = _np(feats).astype(np.float64) - gauss.location_
        total = total + np.einsum("ij,jk,ik->i", d, gauss.precision_, d) / d.shape[1]
    return total


def pixel_auroc(error_maps: ArrayLike, masks: ArrayLike) -> float:
    """AUROC of per-pixel errors against ground-truth masks, pooling every pixel of every image."""
    e, m = _np(error_maps).reshape(-1), _np(masks).reshape(-1)
    if e.shape != m.shape:
        raise ValueError(f"error maps ({e.size} px) and masks ({m.size} px) differ in size")
    return float(skm.roc_auc_score(m > 0.5, e))
