"""Figures for the series, in one style. Every function returns its Figure.

Figures are closed in pyplot before they are returned, so a notebook shows each one once: as the
cell's value. Image figures are laid out in inches, not left to ``tight_layout``: every image
tile is at least ``TILE_IN`` wide (48 px at ``DPI``), rows too long for ``MAX_WIDTH_IN`` wrap
into several rows, and every label and title gets its own room, so none can overlap an image.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import ScaledTranslation
from torchvision.utils import make_grid

from nbhelpers import metrics

DPI = 80  # 10-point text is 11 px; with the runner's JPEG figures a notebook stays within its size budget
TILE_IN = 0.6  # the least width of one image tile (with its padding): 48 px at DPI
MAX_WIDTH_IN = 10.0  # the widest image figure (800 px): a browser scales a wider one down
GAP_IN = 0.1  # between the panels of an image figure, and around it
PAD_PX = 2  # white padding around each image of a grid, in the images' own pixels

sns.set_theme(context="notebook", style="whitegrid", palette="deep")
matplotlib.rcParams.update({"figure.dpi": DPI, "savefig.dpi": DPI, "axes.titleweight": "bold",
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
    grid = make_grid(_to_display(images, value_range), nrow=nrow, padding=PAD_PX, pad_value=1.0)
    return grid.permute(1, 2, 0).numpy()


# --- image figures: exact sizes in inches -------------------------------------------------------


def _columns(wanted: int, fit: int) -> int:
    """Columns for rows of ``wanted`` images when only ``fit`` fit: each row wraps into even parts."""
    lines = -(-wanted // max(fit, 1))
    return -(-wanted // lines)


def _text_in(text: Text) -> tuple[float, float]:
    """Width and height of a text in inches; (0, 0) when it is empty."""
    if not text.get_text():
        return 0.0, 0.0
    box = text.get_window_extent()
    return box.width / text.figure.dpi, box.height / text.figure.dpi


def _bare(ax: Axes, label: str | None = None) -> Axes:
    """An image axes without ticks, grid or frame; ``label`` to its left, horizontal."""
    ax.set(xticks=[], yticks=[])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if label:  # placed by hand: without ticks and spines the axis cannot place it
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
        ax.yaxis.set_label_coords(0, 0.5, transform=ax.transAxes + ScaledTranslation(
            -GAP_IN, 0, ax.figure.dpi_scale_trans))
    return ax


def _label_width(axes: Sequence[Axes]) -> float:
    """The room the axes' left labels need, in inches (the widest label and its pad)."""
    return max((_text_in(ax.yaxis.label)[0] + GAP_IN for ax in axes if ax.get_ylabel()), default=0.0)


def _draw_grid(ax: Axes, images: torch.Tensor, cols: int, value_range: tuple[float, float],
               tile_in: float) -> tuple[float, float]:
    """Show ``images`` in rows of ``cols``, each tile ``tile_in`` wide; return the grid's size in inches."""
    arr = _grid_array(images, cols, value_range)
    inch_per_px = tile_in / (images.shape[-1] + PAD_PX)
    # Nearest neighbour keeps enlarged pixels sharp; shrinking needs antialiasing instead.
    enlarged = inch_per_px * ax.figure.dpi >= 1
    ax.imshow(arr, aspect="auto", interpolation="nearest" if enlarged else "antialiased")
    return arr.shape[1] * inch_per_px, arr.shape[0] * inch_per_px


def _arrange(fig: Figure, rows: list[list[tuple[Axes, tuple[float, float]]]],
             title: str | None) -> Figure:
    """Place image axes at their sizes in inches, row by row, and size the figure around them.

    Left labels get a column as wide as the widest, each row's panel titles a band as tall as the
    tallest, the figure title its own band on top: texts and images cannot overlap.
    """
    col_w = [max(row[c][1][0] for row in rows if c < len(row)) for c in range(max(map(len, rows)))]
    row_h = [max(size[1] for _, size in row) for row in rows]
    label_w = _label_width([ax for row in rows for ax, _ in row])
    title_h = [max((_text_in(ax.title)[1] + plt.rcParams["axes.titlepad"] / 72
                    for ax, _ in row if ax.get_title()), default=0.0) for row in rows]
    content_w = label_w + sum(col_w) + GAP_IN * (len(col_w) - 1)
    head, head_w, head_h = None, 0.0, 0.0
    if title:
        head = fig.suptitle(title, va="top")
        head_w, head_h = _text_in(head)
        if head_w > MAX_WIDTH_IN - 2 * GAP_IN:  # wrap a title wider than the widest figure
            head.set_text(textwrap.fill(title, int(len(title) * (MAX_WIDTH_IN - 2 * GAP_IN) / head_w)))
            head_w, head_h = _text_in(head)
        head_h += GAP_IN
    fig_w = max(content_w, head_w) + 2 * GAP_IN
    fig_h = 2 * GAP_IN + head_h + sum(title_h) + sum(row_h) + GAP_IN * (len(rows) - 1)
    fig.set_size_inches(fig_w, fig_h)
    if head is not None:
        head.set_y(1 - GAP_IN / fig_h)
    y = fig_h - GAP_IN - head_h
    for row, band, height in zip(rows, title_h, row_h):
        y -= band
        x = (fig_w - content_w) / 2 + label_w
        for (ax, (w, h)), cw in zip(row, col_w):
            ax.set_position((x / fig_w, (y - h) / fig_h, w / fig_w, h / fig_h))
            x += cw + GAP_IN
        y -= height + GAP_IN
    plt.close(fig)
    return fig


def image_grid(images: torch.Tensor, *, nrow: int = 8, title: str | None = None,
               value_range: tuple[float, float] = (0, 1), width: float = 6.0) -> Figure:
    """A grid of images ``(N, C, H, W)`` in rows of ``nrow``, ``width`` inches wide where tiles allow.

    Tiles are never narrower than ``TILE_IN``; a row that would not fit in ``MAX_WIDTH_IN`` at that
    size wraps into several even rows.
    """
    avail = MAX_WIDTH_IN - 2 * GAP_IN
    wanted = max(1, min(nrow, len(images)))
    cols = _columns(wanted, int(avail // TILE_IN))
    tile = min(max(width / wanted, TILE_IN), avail / cols)
    fig = plt.figure()
    ax = _bare(fig.add_axes((0, 0, 1, 1)))
    return _arrange(fig, [[(ax, _draw_grid(ax, images, cols, value_range, tile))]], title)


def image_rows(rows: dict[str, torch.Tensor], *, title: str | None = None,
               value_range: tuple[float, float] = (0, 1), width: float = 9.0) -> Figure:
    """One labelled row per entry: originals / reconstructions / ..., or interpolation strips.

    ``width`` inches where tiles of at least ``TILE_IN`` allow; a row too long for
    ``MAX_WIDTH_IN`` wraps into several rows under its one label.
    """
    fig = plt.figure()
    axes = [_bare(fig.add_axes((0, 0, 1, 1)), label) for label in rows]
    label_w = _label_width(axes)
    avail = MAX_WIDTH_IN - 2 * GAP_IN - label_w
    n = max(len(v) for v in rows.values())
    cols = _columns(n, int(avail // TILE_IN))
    tile = min(max((width - label_w) / n, TILE_IN), avail / cols)
    placed = [[(ax, _draw_grid(ax, images, cols, value_range, tile))]
              for ax, images in zip(axes, rows.values(), strict=True)]
    return _arrange(fig, placed, title)


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
    ax.set_ylabel(ylabel or ", ".join(ys))  # an unlabelled axis still says what it shows
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
    """One grid per saved snapshot in rows of ``per_row``, titled with its training step.

    As many grids side by side as fit in ``MAX_WIDTH_IN`` with tiles of at least ``TILE_IN``; each
    step label sits in a band of its own above its grid.
    """
    items = snapshots.items
    if len(items) > max_snapshots:  # keep the first, the last and evenly spaced ones between
        keep = np.linspace(0, len(items) - 1, max_snapshots).round().astype(int)
        items = [items[i] for i in keep]
    shown = [(step, images[: per_row * per_row // 2]) for step, images in items]
    avail = MAX_WIDTH_IN - 2 * GAP_IN
    cols = _columns(min(per_row, len(shown[0][1])), int(avail // TILE_IN))
    fit = max(1, int((avail + GAP_IN) // (cols * TILE_IN + GAP_IN)))  # grids side by side
    tile = max(TILE_IN, (avail - GAP_IN * (fit - 1)) / (fit * cols))
    per_line = min(len(shown), fit)
    fig = plt.figure()
    placed = []
    for step, images in shown:
        ax = _bare(fig.add_axes((0, 0, 1, 1)))
        ax.set_title(f"step {step}", fontsize=10)
        placed.append((ax, _draw_grid(ax, images, cols, value_range, tile)))
    return _arrange(fig, [placed[i:i + per_line] for i in range(0, len(placed), per_line)], title)


def heatmap(matrix: Any, *, labels: Sequence[str] | None = None, title: str | None = None,
            fmt: str = ".2f", cmap: str = "vlag", center: float | None = 0.0) -> Figure:
    """An annotated heatmap of a square matrix (e.g. correlations between class means)."""
    m = metrics._np(matrix)
    size = 1.5 + 0.5 * len(m)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    sns.heatmap(m, annot=True, fmt=fmt, cmap=cmap, center=center, xticklabels=labels or "auto",
                yticklabels=labels or "auto", ax=ax, annot_kws={"fontsize": 8}, square=True)
    return _finish(fig, title)


def signal_reconstructions(signals: Any, reconstructions: Any, titles: Sequence[str], *,
                           ylabel: str = "amplitude") -> Figure:
    """Signals against their reconstructions, one panel each, the error area shaded between them."""
    fig, axes = plt.subplots(1, len(titles), figsize=(5.5 * len(titles), 3.4), sharey=True, squeeze=False)
    for ax, x, r, title in zip(axes[0], metrics._np(signals), metrics._np(reconstructions), titles, strict=True):
        t = np.arange(len(x))
        ax.plot(t, x, label="input")
        ax.plot(t, r, label="reconstruction")
        ax.fill_between(t, x, r, color="lightcoral", label="error")
        ax.set(title=title, xlabel="sample")
    axes[0, 0].set_ylabel(ylabel)  # the panels share it
    axes[0, 0].legend(fontsize=8)
    return _finish(fig, None)
