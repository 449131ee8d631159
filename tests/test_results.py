import errno
import json
import tempfile
from pathlib import Path

import pytest

from nbhelpers import runner
from nbhelpers.data.core import DataSource
from nbhelpers.results import RESULTS_MIME, Record, summary


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
    assert "| vae_test_neg_elbo_nats | 93.25 | 105 | pytorch/examples VAE |  |" in text
    assert "| anomaly_auc_fashion | 0.99 |  |  |  |" in text


def test_the_summary_keeps_every_reference_with_its_source_and_note(tmp_path, monkeypatch):
    """A reference that is not comparable must never appear without the note that says so."""
    monkeypatch.setenv("NBH_RESULTS_DIR", str(tmp_path))
    rec = Record("05_demo")
    rec.log(fd=5.83)
    rec.reference("fd", 37.7, "Heusel et al., GANs Trained by a Two Time-Scale Update Rule, NeurIPS 2017",
                  note="Inception-v3 features: NOT comparable with our classifier-feature FD")
    rec.reference("fd", 30.0, "course write-up A|B", note="another | run")
    rec.save()
    lines = summary(tmp_path).splitlines()
    assert "| metric | ours | reference | source | note |" in lines
    assert ("| fd | 5.83 | 37.7 | Heusel et al., GANs Trained by a Two Time-Scale Update Rule, NeurIPS 2017 "
            "| Inception-v3 features: NOT comparable with our classifier-feature FD |") in lines
    assert r"| fd | 5.83 | 30 | course write-up A\|B | another \| run |" in lines


def test_in_a_notebook_save_also_hands_over_the_record_as_data(tmp_path, monkeypatch):
    """The grader reads a student's results from this output; the visible line stays the same."""
    import IPython
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw: shown.append((obj, raw)))
    monkeypatch.setenv("NBH_RESULTS_DIR", str(tmp_path))
    rec = Record("05_demo")
    rec.log(auc=0.9)
    path = rec.save()
    [(data, raw)] = shown
    assert raw and data["text/plain"].startswith("results saved to ")
    assert data[RESULTS_MIME] == json.loads(path.read_text())


def test_non_finite_metrics_are_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("NBH_RESULTS_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="finite"):
        Record("x").log(bad=float("nan"))


def test_summary_without_results_says_what_to_do(tmp_path):
    assert "python -m nbhelpers run" in summary(tmp_path)


def full_disk(self, *args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", str(self))


def read_only(*args, **kwargs):
    raise OSError(errno.EROFS, "Read-only file system")


@pytest.mark.parametrize("target,name,failure,why", [
    (Path, "write_text", full_disk, "no space left on the device"),
    (tempfile, "mkstemp", read_only, "the folder is not writable"),
], ids=["disk-full", "read-only"])
def test_a_failed_save_names_the_record_and_the_fix(tmp_path, monkeypatch, target, name, failure, why):
    monkeypatch.setenv("NBH_RESULTS_DIR", str(tmp_path))
    rec = Record("05_demo")
    rec.log(auc=0.9)
    monkeypatch.setattr(target, name, failure)
    with pytest.raises(OSError) as err:
        rec.save()
    message = str(err.value)
    assert message.startswith(f"cannot write {tmp_path / '05_demo.json'}: {why}")
    assert "set NBH_RESULTS_DIR to a writable folder" in message and ".part" not in message
    assert list(tmp_path.iterdir()) == []


def broken_results(tmp_path):
    """One good record beside a truncated one and a JSON file that is no record."""
    rec = Record("05_demo")
    rec.log(auc=0.9)
    rec.save()
    (tmp_path / "01_broken.json").write_text('{"notebook": "01_bro')
    (tmp_path / "02_other.json").write_text('{"note": "not a record"}')


def test_summary_skips_files_that_are_not_records_and_names_them(tmp_path, monkeypatch):
    monkeypatch.setenv("NBH_RESULTS_DIR", str(tmp_path))
    broken_results(tmp_path)
    with pytest.warns(UserWarning) as caught:
        text = summary(tmp_path)
    assert "## 05_demo" in text and "| auc | 0.9 |" in text
    assert "01_bro" not in text and "02_other" not in text
    warned = [str(w.message) for w in caught]
    assert any(str(tmp_path / "01_broken.json") in w and "JSONDecodeError" in w for w in warned)
    assert any(str(tmp_path / "02_other.json") in w and "KeyError" in w for w in warned)


def test_a_broken_record_does_not_fail_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("NBH_RESULTS_DIR", str(tmp_path))
    broken_results(tmp_path)
    monkeypatch.setattr(runner, "find_notebooks", lambda selection: [])  # the notebooks ran: only the summary
    with pytest.warns(UserWarning) as caught:
        assert runner.run() == 0
    warned = "\n".join(str(w.message) for w in caught)
    assert str(tmp_path / "01_broken.json") in warned and str(tmp_path / "02_other.json") in warned
