"""Every figure function returns a closed Figure with the expected panels, on tiny inputs."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

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
