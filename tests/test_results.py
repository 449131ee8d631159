import json

import pytest

from nbhelpers.data.core import DataSource
from nbhelpers.results import Record, summary


def test_record_saves_the_documented_format(tmp_path, monkeypatch):
    monkeypatch.setenv("NBH_RESULTS_DIR", str(tmp_path))
    rec = Record("05_demo")
    rec.add_data(DataSource("MNIST", "real", "/data/MNIST/raw"), DataSource("CIFAR-10", "standin", "generated"))
    rec.log(vae_test_neg_elbo_nats=93.25, anomaly_auc_fashion=0.99)
    rec.reference("vae_test_neg_elbo_nats", 105, "pytorch/examples VAE")
    path = rec.save()
    saved = json.loads(path.read_text())
    assert path == tmp_path / "05_demo.json"
    assert set(saved) >= {"notebook", "profile", "seed", "device", "wall_time_s", "data", "metrics",
                          "references", "versions"}
    assert saved["data"]["MNIST"]["kind"] == "real" and saved["data"]["CIFAR-10"]["kind"] == "standin"
    assert saved["metrics"] == {"vae_test_neg_elbo_nats": 93.25, "anomaly_auc_fashion": 0.99}
    assert saved["references"][0]["value"] == 105.0
    assert "torch" in saved["versions"]

    table = rec.table()
    row = table[table.metric == "vae_test_neg_elbo_nats"].iloc[0]
    assert (row.ours, row.reference) == (93.25, 105.0)
    text = summary(tmp_path)
    assert "| vae_test_neg_elbo_nats | 93.25 | 105 | pytorch/examples VAE |" in text


def test_non_finite_metrics_are_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("NBH_RESULTS_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="finite"):
        Record("x").log(bad=float("nan"))


def test_summary_without_results_says_what_to_do(tmp_path):
    assert "python -m nbhelpers run" in summary(tmp_path)
