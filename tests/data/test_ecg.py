"""ECG5000: the UCR .txt/.tsv/.arff readers, the TensorFlow ecg.csv, the fallback order, the stand-in."""

import numpy as np
import pytest
import torch

from nbhelpers.data import ecg
from nbhelpers.data.core import DataError


def beats(n, seed=0, classes=(1, 2, 3, 4, 5)):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 140)).round(6), rng.choice(classes, n)


def write_ucr(path, signals, labels):
    """One beat per row in the UCR archive's formats, as the ECG5000 downloads hold them: ``.txt``
    (timeseriesclassification.com) right-aligned 16-character ``%e`` fields, the class first;
    ``.tsv`` (UCR 2018) tab-separated, the class first; ``.arff`` the class last, after the header."""
    if path.suffix == ".arff":
        header = ["%ECG5000 provenance not determined yet", "@Relation ECG5000"]
        header += [f"@attribute att{i + 1} numeric" for i in range(140)]
        header += ["@attribute  target {1,2,3,4,5}", "", "@data"]
        rows = [",".join([*(f"{v:.8g}" for v in row), str(label)]) for row, label in zip(signals, labels)]
        path.write_text("\n".join(header + rows) + "\n")
    elif path.suffix == ".tsv":
        rows = ["\t".join([str(label), *(f"{v:.8g}" for v in row)]) for row, label in zip(signals, labels)]
        path.write_text("\n".join(rows) + "\n")
    else:
        np.savetxt(path, np.column_stack([labels, signals]), fmt="%16.7e", delimiter="")


def write_tf_csv(path, signals, labels):
    """The TensorFlow tutorial's ecg.csv: no header, 140 samples then the label (1.0 normal, 0.0 not)."""
    np.savetxt(path, np.column_stack([signals, labels]), delimiter=",")


def test_fixture_rows_look_like_the_downloads(tmp_path):
    """The first characters of a row, as in the archive's ECG5000_TRAIN.txt and .arff."""
    signals = np.array([[-0.11252183, -2.8272038] + [0.0] * 138])
    write_ucr(tmp_path / "a.txt", signals, np.array([1]))
    assert (tmp_path / "a.txt").read_text().startswith("   1.0000000e+00  -1.1252183e-01  -2.8272038e+00")
    write_ucr(tmp_path / "a.arff", signals, np.array([1]))
    assert (tmp_path / "a.arff").read_text().splitlines()[-1].startswith("-0.11252183,-2.8272038,0,")


@pytest.mark.parametrize("ext", [".txt", ".tsv", ".arff"])
def test_ucr_formats_read_exactly(tmp_path, ext):
    signals, labels = beats(6)
    folder = tmp_path / "ECG5000"
    folder.mkdir()
    write_ucr(folder / f"ECG5000_TRAIN{ext}", signals, labels)
    data = ecg.ecg5000(root=tmp_path, policy="real", download=False)
    assert data.signals.shape == (6, 140) and data.signals.dtype == torch.float32
    assert data.labels.dtype == torch.int64 and data.labels.tolist() == labels.tolist()
    assert torch.allclose(data.signals, torch.from_numpy(signals).float(), atol=1e-6)
    assert (
        data.split_files == [f"ECG5000_TRAIN{ext}"] and "TEST split is missing" in data.source.note
    )
    assert data.normal.tolist() == (labels == 1).tolist()


def test_both_splits_concatenated_each_read_once(tmp_path):
    folder = tmp_path / "ECG5000"
    folder.mkdir()
    train, test = beats(5, seed=1), beats(7, seed=2)
    write_ucr(folder / "ECG5000_TRAIN.txt", *train)
    write_ucr(folder / "ECG5000_TRAIN.arff", *train)  # the same split in a second format
    write_ucr(folder / "ECG5000_TEST.tsv", *test)
    data = ecg.ecg5000(root=tmp_path, policy="real", download=False)
    assert data.split_files == ["ECG5000_TRAIN.txt", "ECG5000_TEST.tsv"]
    assert len(data) == 12 and data.labels.tolist() == [*train[1], *test[1]]


def test_tensorflow_csv_keeps_normal_as_1(tmp_path):
    signals, labels = beats(8, classes=(0, 1))
    write_tf_csv(tmp_path / "ecg.csv", signals, labels)
    data = ecg.ecg5000(root=tmp_path, policy="real", download=False)
    assert data.labels.tolist() == labels.tolist()  # 1 = normal, 0 = abnormal of unknown class
    assert int(data.normal.sum()) == int((labels == 1).sum())
    assert data.split_files == ["ecg.csv"]


def test_ucr_preferred_over_csv(tmp_path):
    folder = tmp_path / "ECG5000"
    folder.mkdir()
    write_tf_csv(folder / "ecg.csv", *beats(3, classes=(0, 1)))
    write_ucr(folder / "ECG5000_TRAIN.txt", *beats(4))
    assert ecg.ecg5000(root=tmp_path, policy="real", download=False).split_files == [
        "ECG5000_TRAIN.txt"
    ]


def test_bad_files_are_named(tmp_path):
    folder = tmp_path / "ECG5000"
    folder.mkdir()
    signals, labels = beats(4)
    write_ucr(folder / "ECG5000_TRAIN.txt", signals[:, :100], labels)
    with pytest.raises(DataError, match=r"ECG5000_TRAIN.txt has 100 samples per beat"):
        ecg.ecg5000(root=tmp_path, policy="real", download=False)
    write_ucr(folder / "ECG5000_TRAIN.txt", signals, labels + 5)
    with pytest.raises(DataError, match=r"ECG5000_TRAIN.txt has labels"):
        ecg.ecg5000(root=tmp_path, policy="real", download=False)
    (folder / "ECG5000_TRAIN.txt").write_text("1 0.5 abc\n")
    with pytest.raises(DataError, match="not a table of numbers"):
        ecg.ecg5000(root=tmp_path, policy="real", download=False)
    (folder / "ECG5000_TRAIN.txt").unlink()
    (folder / "ECG5000_TRAIN.arff").write_text("@relation x\n1,2,3\n")
    with pytest.raises(DataError, match="no @data line"):
        ecg.ecg5000(root=tmp_path, policy="real", download=False)


def test_fallback_order(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ecg, "download_file", pytest.fail)  # download=False must not try
    data = ecg.ecg5000(root=tmp_path, policy="auto", download=False)
    assert data.source.kind == "standin" and "STAND-IN DATA for ECG5000" in capsys.readouterr().out
    with pytest.raises(DataError, match="ECG5000_TRAIN.txt.*ecg.csv"):
        ecg.ecg5000(root=tmp_path, policy="real", download=False)
    (tmp_path / "ECG5000").mkdir()
    write_ucr(tmp_path / "ECG5000" / "ECG5000_TRAIN.txt", *beats(3))
    assert ecg.ecg5000(root=tmp_path, policy="auto", download=False).source.kind == "real"
    assert ecg.ecg5000(root=tmp_path, policy="standin").source.kind == "standin"


def test_offline_download_falls_back(tmp_path, monkeypatch):
    def offline(url, dest, **_):
        raise DataError(f"could not reach {url}")

    monkeypatch.setattr(ecg, "download_file", offline)
    assert ecg.ecg5000(root=tmp_path, policy="auto").source.kind == "standin"
    with pytest.raises(DataError, match="download failed"):
        ecg.ecg5000(root=tmp_path, policy="real")


def test_standin_shapes_classes_and_determinism():
    a, b = ecg.ecg5000(policy="standin", seed=4), ecg.ecg5000(policy="standin", seed=4)
    assert a.signals.shape == (5000, 140) and a.signals.dtype == torch.float32
    assert torch.equal(a.signals, b.signals) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.signals, ecg.ecg5000(policy="standin", seed=5).signals)
    assert set(a.labels.unique().tolist()) == {1, 2, 3, 4, 5}
    assert 0.54 < a.normal.float().mean() < 0.63  # ECG5000 is 58% normal
    # z-normalised per beat, as the UCR files are
    assert a.signals.mean(1).abs().max() < 1e-5 and (a.signals.std(1) - 1).abs().max() < 1e-4


def test_standin_abnormal_beats_differ_but_overlap():
    data = ecg.ecg5000(policy="standin", seed=0)
    normal, abnormal = data.signals[data.normal], data.signals[~data.normal]
    gap = (normal.mean(0) - abnormal.mean(0)).abs()
    assert gap.max() > 1.0  # the mean beats differ clearly somewhere (the ventricular complex)
    # ...yet not every abnormal beat is far from the normal mean: the detector's task is not trivial
    centre = normal.mean(0)
    d_normal = (normal - centre).pow(2).mean(1)
    d_abnormal = (abnormal - centre).pow(2).mean(1)
    assert (d_abnormal < d_normal.quantile(0.95)).float().mean() > 0.05
    assert d_abnormal.median() > d_normal.quantile(0.75)
