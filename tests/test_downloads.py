"""Downloads without a network: offline decided once, bad pages never land, no folders left behind."""

import socket
import urllib.error
import urllib.request

import numpy as np
import pytest

from nbhelpers.data import core, ecg, mnist
from nbhelpers.data.core import DatasetInfo, download_file, resolve


@pytest.fixture(autouse=True)
def _online(monkeypatch):
    """Each test starts in a process that has not yet decided it is offline."""
    monkeypatch.setattr(core, "_offline", None)


def opener(monkeypatch, error):
    """Replace urlopen by one that raises ``error``; return the list of URLs it was asked for."""
    asked = []

    def urlopen(request, timeout):
        asked.append(request.full_url)
        raise error

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return asked


def demo(k):
    return DatasetInfo(f"Demo{k}", find=lambda root: None, instructions="put it in data/demo",
                       standin="a demo stand-in",
                       download=lambda root: download_file(f"http://example.org/{k}.bin", root / "d" / "f.bin"))


@pytest.mark.parametrize("error", [urllib.error.URLError(TimeoutError("timed out")), TimeoutError("timed out")])
def test_a_hanging_network_is_decided_once_and_said_once(tmp_path, monkeypatch, capsys, error):
    asked = opener(monkeypatch, error)
    kinds = [resolve(demo(k), policy="auto", root=tmp_path)[0] for k in range(10)]
    assert kinds == ["standin"] * 10
    assert asked == ["http://example.org/0.bin"]  # nine loaders later, no URL was tried again
    said = [line for line in capsys.readouterr().out.splitlines() if "skipping every download" in line]
    assert len(said) == 1 and said[0].startswith("no network: http://example.org/0.bin failed")


def test_a_dns_failure_counts_as_offline_too(tmp_path, monkeypatch):
    asked = opener(monkeypatch, urllib.error.URLError(socket.gaierror(-3, "Temporary failure")))
    for k in range(3):
        resolve(demo(k), policy="auto", root=tmp_path)
    assert len(asked) == 1


@pytest.mark.parametrize("error", [
    urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")),
    urllib.error.HTTPError("http://example.org", 404, "Not Found", {}, None),
])
def test_one_server_failing_is_not_offline(tmp_path, monkeypatch, error):
    # MNIST's second mirror must still be tried when the first one refuses or has no file.
    asked = opener(monkeypatch, error)
    assert resolve(mnist.MNIST, policy="auto", root=tmp_path)[0] == "standin"
    assert [url.split("/")[2] for url in asked] == ["ossci-datasets.s3.amazonaws.com", "yann.lecun.com"]


def test_a_failed_download_leaves_no_folder_behind(tmp_path, monkeypatch):
    opener(monkeypatch, urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")))
    root = tmp_path / "root"
    root.mkdir()
    (root / "MNIST").mkdir()  # a folder that was there before stays
    assert resolve(mnist.MNIST, policy="auto", root=root)[0] == "standin"
    assert [p.name for p in root.rglob("*")] == ["MNIST"]


def serve(monkeypatch, tmp_path, body: bytes):
    """Point the ECG download at a local file holding ``body``, as a captive portal would answer."""
    page = tmp_path / "answer"
    page.write_bytes(body)
    monkeypatch.setattr(ecg, "CSV_URL", page.as_uri())


def test_a_captive_portal_page_never_replaces_ecg_csv(tmp_path, monkeypatch, capsys):
    serve(monkeypatch, tmp_path, b"<!DOCTYPE html>\n<html><body>Sign in to the Wi-Fi</body></html>\n")
    root = tmp_path / "root"
    data = ecg.ecg5000(policy="auto", root=root)
    assert data.source.kind == "standin"
    assert not root.exists()  # neither the page nor the folders made for it
    assert "sent something other than ecg.csv (not rows of numbers" in capsys.readouterr().out
    assert ecg.ecg5000(policy="auto", root=root).source.kind == "standin"  # the next run too


def test_a_downloaded_ecg_csv_of_the_right_shape_is_kept(tmp_path, monkeypatch):
    rows = np.column_stack([np.zeros((4, ecg.LENGTH)) + np.arange(4)[:, None], [1, 0, 1, 1]])
    serve(monkeypatch, tmp_path, "\n".join(",".join(map(str, r)) for r in rows).encode())
    data = ecg.ecg5000(policy="auto", root=tmp_path / "root")
    assert data.source.kind == "real" and data.labels.tolist() == [1, 0, 1, 1]
    assert data.source.location == "<data root>/ECG5000"


def test_a_csv_with_the_wrong_row_length_is_refused(tmp_path, monkeypatch):
    serve(monkeypatch, tmp_path, b"1,2,3\n4,5,6\n")
    assert ecg.ecg5000(policy="auto", root=tmp_path / "root").source.kind == "standin"
    assert not (tmp_path / "root").exists()
