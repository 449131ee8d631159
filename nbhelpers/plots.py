"""Figures for the series, in one style. Every function returns its Figure.

Figures are closed in pyplot before they are returned, so a notebook shows each one once: as the
cell's value. Modest DPI keeps the committed notebooks small.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure
from torchvision.utils import make_grid

from nbhelpers import metrics

sns.set_theme(context="notebook", style="whitegrid", palette="deep")
matplotlib.rcParams.update({"figure.dpi": 72, "savefig.dpi": 72, "axes.titleweight": "bold",
                            "image.interpolation": "nearest"})


def _finish(fig: Figure, title: str | None) -> Figure:
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    plt.close(fig)
    return fig


def _to_display(images: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    lo, hi = value_range
    return ((images.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1)


def _grid_array(images: torch.Tensor, nrow: int, value_range: tuple[float, float]) -> np.ndarray:
    grid = make_grid(_to_display(images, value_range), nrow=nrow, padding=2, pad_value=1.0)
    return grid.permute(1, 2, 0).numpy()


def image_grid(images: torch.Tensor, *, nrow: int = 8, title: str | None = None,
               value_range: tuple[float, float] = (0, 1), width: float = 6.0) -> Figure:
    """A grid of images ``(N, C, H, W)``."""
    arr = _grid_array(images, nrow, value_range)
    fig, ax = plt.subplots(figsize=(width, width * arr.shape[0] / arr.shape[1]))
    ax.imshow(arr, cmap="gray" if images.shape[1] == 1 else None)
    ax.axis("off")
    return _finish(fig, title)


def image_rows(rows: dict[str, torch.Tensor], *, title: str | None = None,
               value_range: tuple[float, float] = (0, 1), width: float = 9.0) -> Figure:
    """One labelled row per entry: originals / reconstructions / ..., or interpolation strips."""
    n = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(rows), 1, figsize=(width, width / n * len(rows) * 1.15), squeeze=False)
    for ax, (label, images) in zip(axes[:, 0], rows.items(), strict=True):
        ax.imshow(_grid_array(images, n, value_range), cmap="gray" if images.shape[1] == 1 else None)
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
        ax.grid(False)
    return _finish(fig, title)


def class_grid(images: torch.Tensor, labels: torch.Tensor, classes: Sequence[str], *, per_class: int = 8,
               title: str | None = None, value_range: tuple[float, float] = (0, 1)) -> Figure:
    """One row of examples per class, labelled with the class name."""
    labels = torch.as_tensor(labels).view(-1)
    rows = {}
    for c, name in enumerate(classes):
        idx = (labels == c).nonzero().view(-1)[:per_class]
        if len(idx):
            rows[f"{name} ({int((labels == c).sum())})"] = images[idx]
    return image_rows(rows, title=title, value_range=value_range)


def curves(df: pd.DataFrame, ys: Sequence[str], *, x: str = "step", title: str | None = None,
           smooth: int = 1, ylabel: str | None = None, logy: bool = False,
           hlines: dict[str, float] | None = None, ax_width: float = 6.0, xlabel: str | None = None,
           references: dict[str, tuple[Sequence[float], Sequence[float]]] | None = None) -> Figure:
    """Lines of ``ys`` against ``x`` from a history frame, optionally a rolling mean of ``smooth``.

    ``references`` adds other runs' curves, ``label -> (xs, ys)``, dashed with markers so that
    they never pass for this run's.
    """
    fig, ax = plt.subplots(figsize=(ax_width, 3.4))
    for y in ys:
        series = df[y].rolling(smooth, min_periods=1).mean() if smooth > 1 else df[y]
        ax.plot(df[x], series, label=y)
    for label, (ref_x, ref_y) in (references or {}).items():
        ax.plot(ref_x, ref_y, ls="--", marker="o", ms=3, color="gray", label=label)
    for label, value in (hlines or {}).items():
        ax.axhline(value, ls="--", color="gray", lw=1)
        ax.annotate(label, (df[x].iloc[0], value), textcoords="offset points", xytext=(2, 3), fontsize=9)
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or "")
    if logy:
        ax.set_yscale("log")
    ax.legend(fontsize=9)
    return _finish(fig, title)


def roc_pr(results: dict[str, tuple[Any, Any]], *, title: str | None = None) -> Figure:
    """ROC and precision-recall curves side by side, one line per score, AUCs in the legends."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for name, (y, s) in results.items():
        r, p = metrics.roc(y, s), metrics.pr(y, s)
        a1.plot(r["fpr"], r["tpr"], label=f"{name} (AUC {r['auc']:.3f})")
        a2.plot(p["recall"], p["precision"], label=f"{name} (AP {p['auc_pr']:.3f})")
    a1.plot([0, 1], [0, 1], ls=":", color="gray")
    a1.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    a2.set(xlabel="recall", ylabel="precision", title="precision-recall")
    a1.legend(fontsize=8), a2.legend(fontsize=8)
    return _finish(fig, title)


def confusion_matrix(cm: np.ndarray, classes: Sequence[str], *, title: str | None = None,
                     normalize: bool = False) -> Figure:
    """A confusion matrix as a seaborn heatmap (rows true, columns predicted)."""
    data = cm / np.maximum(cm.sum(1, keepdims=True), 1) if normalize else cm
    size = 1.0 + 0.45 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    sns.heatmap(data, annot=True, fmt=".2f" if normalize else "d", cmap="Blues", cbar=False,
                xticklabels=classes, yticklabels=classes, ax=ax, annot_kws={"fontsize": 8})
    ax.set(xlabel="predicted", ylabel="true")
    return _finish(fig, title)


def latent_scatter(z: Any, labels: Any, *, classes: Sequence[str] | None = None, method: str = "tsne",
                   title: str | None = None, seed: int = 0) -> Figure:
    """Project latent vectors to 2-D (t-SNE or PCA, scikit-learn) and colour them by class."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    z = metrics._np(z).reshape(len(labels), -1)
    labels = metrics._np(labels)
    if z.shape[1] > 2:
        proj = (TSNE(n_components=2, init="pca", random_state=seed, perplexity=min(30, len(z) - 1))
                if method == "tsne" else PCA(n_components=2, random_state=seed))
        z = proj.fit_transform(z)
    fig, ax = plt.subplots(figsize=(6, 5))
    names = np.array(classes)[labels] if classes is not None else labels
    sns.scatterplot(x=z[:, 0], y=z[:, 1], hue=names, hue_order=list(classes) if classes else None,
                    s=10, linewidth=0, palette="tab10", ax=ax)
    ax.set(xticks=[], yticks=[], xlabel=f"{method} 1", ylabel=f"{method} 2")
    ax.legend(fontsize=8, markerscale=2, bbox_to_anchor=(1.01, 1), loc="upper left")
    return _finish(fig, title)


def error_heatmaps(originals: torch.Tensor, reconstructions: torch.Tensor, *, n: int = 6,
                   title: str | None = None) -> Figure:
    """Rows: original, reconstruction, |error| heatmap (mean over channels), error histogram."""
    x, r = originals[:n].detach().cpu().float(), reconstructions[:n].detach().cpu().float()
    err = (x - r).abs().mean(1)
    fig, axes = plt.subplots(4, len(x), figsize=(1.6 * len(x), 6.4), squeeze=False)
    vmax = float(err.max())
    for i in range(len(x)):
        for row, img in ((0, x[i]), (1, r[i])):
            axes[row, i].imshow(img.permute(1, 2, 0).clamp(0, 1).squeeze(), cmap="gray" if img.shape[0] == 1 else None)
        axes[2, i].imshow(err[i], cmap="inferno", vmin=0, vmax=vmax)
        axes[3, i].hist((x[i] - r[i]).flatten().numpy(), bins=30, color="C0")
        for row in range(3):
            axes[row, i].axis("off")
        axes[3, i].tick_params(labelsize=7)
    for row, label in enumerate(["original", "reconstruction", "|error|"]):
        axes[row, 0].set_title(label, loc="left", fontsize=9)
    axes[3, 0].set_ylabel("error histogram", fontsize=9)
    return _finish(fig, title)


def score_hist(scores: dict[str, Any], *, threshold: float | None = None, title: str | None = None,
               xlabel: str = "score", bins: int = 40) -> Figure:
    """Overlaid histograms of scores per group, with the decision threshold if given."""
    fig, ax = plt.subplots(figsize=(6, 3.4))
    all_values = np.concatenate([metrics._np(v).ravel() for v in scores.values()])
    edges = np.histogram_bin_edges(all_values, bins=bins)
    for name, values in scores.items():
        ax.hist(metrics._np(values).ravel(), bins=edges, alpha=0.55, label=name, density=True)
    if threshold is not None:
        ax.axvline(threshold, color="k", ls="--", lw=1.2, label=f"threshold {threshold:.4g}")
    ax.set(xlabel=xlabel, ylabel="density")
    ax.legend(fontsize=8)
    return _finish(fig, title)


def snapshots_figure(snapshots: Any, *, title: str | None = None, value_range: tuple[float, float] = (-1, 1),
                     per_row: int = 8, max_snapshots: int = 8) -> Figure:
    """One small grid per saved snapshot, labelled with its training step."""
    items = snapshots.items
    if len(items) > max_snapshots:  # keep the first, the last and evenly spaced ones between
        keep = np.linspace(0, len(items) - 1, max_snapshots).round().astype(int)
        items = [items[i] for i in keep]
    cols = min(4, len(items))
    rows = -(-len(items) // cols)
    grids = [(step, _grid_array(images[: per_row * per_row // 2], per_row, value_range), images.shape[1])
             for step, images in items]
    aspect = grids[0][1].shape[0] / grids[0][1].shape[1]  # height over width of one grid
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, (3.2 * aspect + 0.35) * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (step, grid, channels) in zip(axes.flat, grids, strict=False):
        ax.imshow(grid, cmap="gray" if channels == 1 else None)
        ax.set_title(f"step {step}", fontsize=10)
    return _finish(fig, title)


def heatmap(matrix: Any, *, labels: Sequence[str] | None = None, title: str | None = None,
            fmt: str = ".2f", cmap: str = "vlag", center: float | None = 0.0) -> Figure:
    """An annotated heatmap of a square matrix (e.g. correlations between class means)."""
    m = metrics._np(matrix)
    size = 1.5 + 0.5 * len(m)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    sns.heatmap(m, annot=True, fmt=fmt, cmap=cmap, center=center, xticklabels=labels or "auto",
                yticklabels=labels or "auto", ax=ax, annot_kws={"fontsize": 8}, square=True)
    return _finish(fig, title)


def signal_reconstructions(signals: Any, reconstructions: Any, titles: Sequence[str]) -> Figure:
    """Signals against their reconstructions, one panel each, the error area shaded between them."""
    fig, axes = plt.subplots(1, len(titles), figsize=(5.5 * len(titles), 3.4), sharey=True, squeeze=False)
    for ax, x, r, title in zip(axes[0], metrics._np(signals), metrics._np(reconstructions), titles, strict=True):
        t = np.arange(len(x))
        ax.plot(t, x, label="input")
        ax.plot(t, r, label="reconstruction")
        ax.fill_between(t, x, r, color="lightcoral", label="error")
        ax.set(title=title, xlabel="sample")
    axes[0, 0].legend(fontsize=8)
    return _finish(fig, None)
