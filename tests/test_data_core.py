"""The real -> download -> stand-in decision, and downloads that never leave a partial file."""

import hashlib

import numpy as np
import pytest
import torch

from nbhelpers.data import status
from nbhelpers.data.core import (
    DataError,
    DatasetInfo,
    DataSource,
    TensorImageDataset,
    cached_arrays,
    download_file,
    holdout,
    resolve,
)


def info(tmp_path, *, present=False, download=None):
    real = tmp_path / "real"
    if present:
        real.mkdir()
    return DatasetInfo("Demo", find=lambda root: real if real.exists() else None,
                       instructions="put the files in data/demo", standin="a demo stand-in", download=download)


def test_real_files_win(tmp_path):
    assert resolve(info(tmp_path, present=True), policy="auto", root=tmp_path) == ("real", tmp_path / "real")


def test_standin_policy_ignores_real_files(tmp_path, capsys):
    assert resolve(info(tmp_path, present=True), policy="standin", root=tmp_path) == ("standin", None)
    assert "STAND-IN DATA for Demo" in capsys.readouterr().out


def test_download_is_tried_before_the_standin(tmp_path):
    got = tmp_path / "downloaded"
    assert resolve(info(tmp_path, download=lambda root: got), policy="auto", root=tmp_path) == ("real", got)


def test_failed_download_falls_back_loudly_under_auto(tmp_path, capsys):
    def offline(root):
        raise OSError("network unreachable")

    assert resolve(info(tmp_path, download=offline), policy="auto", root=tmp_path) == ("standin", None)
    out = capsys.readouterr().out
    assert "network unreachable" in out and "put the files in data/demo" in out
    assert "no real files found under <data root>;" in out  # not this machine's path


def test_real_policy_raises_with_instructions(tmp_path):
    with pytest.raises(DataError, match="put the files in data/demo"):
        resolve(info(tmp_path), policy="real", root=tmp_path)


def test_download_checks_md5_and_leaves_no_partial_file(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload")
    good = hashlib.md5(b"payload").hexdigest()
    dest = tmp_path / "out" / "file.bin"
    with pytest.raises(DataError, match="checksum"):
        download_file(src.as_uri(), dest, md5="0" * 32)
    assert not dest.parent.exists()  # no partial file, and not the folder made for it
    assert download_file(src.as_uri(), dest, md5=good).read_bytes() == b"payload"


def test_unreachable_url_fails_fast_with_the_url(tmp_path):
    with pytest.raises(DataError, match="could not reach"):
        download_file("http://127.0.0.1:9/none.bin", tmp_path / "x.bin", timeout=2)


def test_status_shows_real_files_relative_to_the_data_root(tmp_path):
    (tmp_path / "ECG5000").mkdir()
    (tmp_path / "ECG5000" / "ecg.csv").write_text("0\n")
    table = status(tmp_path).set_index("dataset")
    assert table.loc["ECG5000", "real files"] == "<data root>/ECG5000/ecg.csv"


def test_an_unwritable_cache_is_named_relative_to_the_cache_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NBH_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "blocked").write_text("a file where a folder should be")
    arrays = cached_arrays(tmp_path / "cache" / "blocked" / "x.npz", lambda: {"a": np.arange(3)})
    assert arrays["a"].tolist() == [0, 1, 2]
    assert "could not write the cache <cache dir>/blocked/x.npz" in capsys.readouterr().out


def test_holdout_splits_disjointly_and_repeats_with_its_seed():
    ds = TensorImageDataset(images=torch.arange(20).view(20, 1, 1, 1), labels=torch.arange(20),
                            classes=["x"], source=DataSource("x", "standin", "test"),
                            masks=torch.arange(20).view(20, 1, 1, 1), extras={"split": "train"})
    rest, held = holdout(ds, 5, seed=3)
    assert len(rest) == 15 and len(held) == 5
    assert sorted(rest.labels.tolist() + held.labels.tolist()) == list(range(20))
    assert torch.equal(held.images.view(-1), held.labels) and torch.equal(held.masks.view(-1), held.labels)
    assert held.extras["split"] == "val" and rest.extras["split"] == "train"
    assert torch.equal(holdout(ds, 5, seed=3)[1].labels, held.labels)
    assert not torch.equal(holdout(ds, 5, seed=4)[1].labels, held.labels)
    with pytest.raises(ValueError, match="cannot hold out 20 of 20"):
        holdout(ds, 20, seed=0)
