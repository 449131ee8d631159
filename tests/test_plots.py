"""Every figure function returns a closed Figure with the expected panels, on tiny inputs."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.text import Text

from nbhelpers import plots
from nbhelpers.training.loop import Snapshots


def check(fig, n_axes=None):
    assert isinstance(fig, Figure)
    assert fig.number not in plt.get_fignums()  # closed in pyplot: a notebook shows it once
    if n_axes is not None:
        assert len([a for a in fig.axes if a.get_visible()]) >= n_axes


def test_image_figures():
    x = torch.rand(10, 3, 8, 8)
    check(plots.image_grid(x, nrow=5), 1)
    check(plots.image_rows({"a": x[:4], "b": x[4:8]}), 2)
    check(plots.class_grid(x, torch.tensor([0, 1] * 5), ["zero", "one"], per_class=3), 2)
    check(plots.error_heatmaps(x[:3], x[:3] * 0.9, n=3), 12)


def test_curves_roc_confusion_scatter_hist():
    df = pd.DataFrame({"step": range(10), "loss": np.linspace(1, 0, 10)})
    check(plots.curves(df, ["loss"], smooth=3, hlines={"chance": 0.5}), 1)
    y, s = np.array([0, 1] * 10), np.linspace(0, 1, 20)
    check(plots.roc_pr({"score": (y, s)}), 2)
    check(plots.confusion_matrix(np.array([[3, 1], [0, 4]]), ["a", "b"], normalize=True), 1)
    check(plots.latent_scatter(np.random.default_rng(0).normal(size=(20, 5)), y, classes=["a", "b"],
                               method="pca"), 1)
    check(plots.score_hist({"normal": s[:10], "anomalous": s[10:]}, threshold=0.5), 1)
    check(plots.heatmap(np.eye(3), labels=["a", "b", "c"]), 1)
    check(plots.signal_reconstructions(np.zeros((2, 20)), np.ones((2, 20)), ["n", "a"]), 2)


def test_snapshots_keep_first_and_last():
    snaps = Snapshots()
    for step in range(12):
        snaps.add(step, torch.rand(32, 1, 8, 8))
    fig = plots.snapshots_figure(snaps, max_snapshots=4, value_range=(0, 1))
    titles = [a.get_title() for a in fig.axes if a.get_title()]
    assert titles[0] == "step 0" and titles[-1] == "step 11" and len(titles) == 4


def test_curves_draw_reference_runs_dashed_and_label_the_x_axis():
    df = pd.DataFrame({"minutes": [1.0, 2.0, 3.0], "acc": [0.5, 0.7, 0.9]})
    fig = plots.curves(df, ["acc"], x="minutes", xlabel="wall time (min)",
                       references={"other run": ([1.5, 3.0], [0.4, 0.6])})
    ax = fig.axes[0]
    ours, ref = ax.get_lines()[:2]
    assert ours.get_linestyle() == "-" and ref.get_linestyle() == "--"
    assert list(ref.get_xdata()) == [1.5, 3.0] and list(ref.get_ydata()) == [0.4, 0.6]
    assert ax.get_xlabel() == "wall time (min)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["acc", "other run"]


# --- readable image figures ---------------------------------------------------------------------

MIN_TILE_PX = plots.TILE_IN * plots.DPI


def tile_px(ax, image_width):
    """The width on screen of one image of the grid an axes shows, with its padding."""
    grid_width = ax.images[0].get_array().shape[1]
    return ax.get_window_extent().width * (image_width + plots.PAD_PX) / grid_width


def boxes(fig):
    """Window extents of every visible axes and every visible non-empty text, after a draw."""
    fig.canvas.draw()
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text()]
    return [a.get_window_extent() for a in fig.axes] + [t.get_window_extent() for t in texts]


def assert_apart(fig):
    found = boxes(fig)
    for i, a in enumerate(found):
        assert fig.bbox.x0 <= a.x0 and a.x1 <= fig.bbox.x1 + 0.5 and a.y1 <= fig.bbox.y1 + 0.5  # not cut off
        for b in found[i + 1:]:
            overlap = min(a.x1, b.x1) - max(a.x0, b.x0), min(a.y1, b.y1) - max(a.y0, b.y0)
            assert min(overlap) <= 0, f"{a} overlaps {b}"


def test_the_minimum_tile_is_readable():
    assert MIN_TILE_PX >= 48 and 72 <= plots.DPI <= 100


def test_grids_of_32_have_tiles_of_at_least_the_minimum_and_wrap_long_rows():
    x = torch.rand(32, 3, 64, 64)
    # The calls of notebooks 03 (WGAN-GP samples) and 02 (EndoVAE prior samples).
    grid = plots.image_grid(x, nrow=16, width=9, title="WGAN-GP samples (the DCGAN's fixed noise vectors)")
    rows = plots.image_rows({"MSE": x, "SSIM + MSE": x}, title="Samples from the prior")
    for fig in (grid, rows):
        fig.canvas.draw()
        assert fig.get_size_inches()[0] <= plots.MAX_WIDTH_IN + 0.01
        for ax in fig.axes:
            assert tile_px(ax, 64) >= MIN_TILE_PX - 0.5
        assert_apart(fig)
    assert rows.axes[0].images[0].get_array().shape[0] > 2 * 66  # 32 in a row wrapped into rows


def test_snapshot_step_labels_overlap_nothing():
    snaps = Snapshots()
    for step in range(12):
        snaps.add(step * 100, torch.rand(32, 3, 64, 64) * 2 - 1)
    fig = plots.snapshots_figure(snaps, max_snapshots=12, title="DCGAN samples over training")
    assert_apart(fig)
    assert all(tile_px(ax, 64) >= MIN_TILE_PX - 0.5 for ax in fig.axes)
    assert [a.get_title() for a in fig.axes] == [f"step {s * 100}" for s in range(12)]


def test_class_grid_labels_overlap_nothing():
    x = torch.rand(30, 1, 28, 28)
    assert_apart(plots.class_grid(x, torch.arange(30) % 3, ["a long class name", "b", "c"], per_class=10,
                                  title="ten per class"))


def test_every_curve_axis_has_a_label():
    df = pd.DataFrame({"step": range(10), "wasserstein": np.linspace(1, 0, 10), "gp": np.ones(10)})
    fig = plots.curves(df, ["wasserstein", "gp"], smooth=3, title="WGAN-GP")  # no ylabel given
    assert all(ax.get_ylabel() and ax.get_xlabel() for ax in fig.axes)
    y, s = np.array([0, 1] * 10), np.linspace(0, 1, 20)
    for fig in (plots.roc_pr({"score": (y, s)}), plots.score_hist({"a": s}),
                plots.signal_reconstructions(np.zeros((2, 20)), np.ones((2, 20)), ["n", "a"])):
        fig.canvas.draw()
        for ax in fig.axes:  # panels that share the first one's y axis show no tick labels of their own
            if any(t.get_visible() and t.get_text() for t in ax.get_yticklabels()):
                assert ax.get_ylabel() and ax.get_xlabel()
