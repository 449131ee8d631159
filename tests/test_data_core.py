"""The real -> download -> stand-in decision, and downloads that never leave a partial file."""

import hashlib

import pytest

from nbhelpers.data.core import DataError, DatasetInfo, download_file, resolve


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
    assert not dest.exists() and list(dest.parent.iterdir()) == []
    assert download_file(src.as_uri(), dest, md5=good).read_bytes() == b"payload"


def test_unreachable_url_fails_fast_with_the_url(tmp_path):
    with pytest.raises(DataError, match="could not reach"):
        download_file("http://127.0.0.1:9/none.bin", tmp_path / "x.bin", timeout=2)
