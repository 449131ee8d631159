"""Checkpoint files: a digest of their bytes, and a full disk that names the file and keeps the last one."""

import errno
import io

import pytest
import torch

from nbhelpers.fileio import WriteError
from nbhelpers.training import checkpoint
from nbhelpers.training.checkpoint import (
    HEADER,
    HEADER_SIZE,
    CheckpointDamaged,
    load_checkpoint,
    save_checkpoint,
)

PAYLOAD = {"step": 3, "w": torch.arange(6.0).view(2, 3), "rows": [{"loss": 0.5}]}


def test_a_checkpoint_round_trips_under_its_digest(tmp_path):
    path = tmp_path / "run.pt"
    save_checkpoint(path, PAYLOAD)
    assert path.read_bytes().startswith(HEADER)
    loaded = load_checkpoint(path)
    assert loaded["step"] == 3 and loaded["rows"] == [{"loss": 0.5}]
    assert torch.equal(loaded["w"], PAYLOAD["w"])


def test_one_changed_weight_byte_is_caught(tmp_path):
    path = tmp_path / "run.pt"
    save_checkpoint(path, PAYLOAD)
    data = bytearray(path.read_bytes())
    data[data.index(PAYLOAD["w"].numpy().tobytes()) + 5] ^= 0x40  # one bit of the weight 1.0
    path.write_bytes(data)
    # torch's reader takes the changed weight without a word: only the digest catches it.
    silently = torch.load(io.BytesIO(bytes(data[HEADER_SIZE:])), weights_only=True)
    assert not torch.equal(silently["w"], PAYLOAD["w"])
    with pytest.raises(CheckpointDamaged, match="run.pt is damaged"):
        load_checkpoint(path)


@pytest.mark.parametrize("keep", [0, 10, HEADER_SIZE + 100], ids=["empty", "in-header", "in-payload"])
def test_a_truncated_checkpoint_is_damaged(tmp_path, keep):
    path = tmp_path / "run.pt"
    save_checkpoint(path, PAYLOAD)
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(CheckpointDamaged):
        load_checkpoint(path)


def torch_short_write(obj, f):
    raise RuntimeError("[enforce fail at inline_container.cc:671] . unexpected pos 663808 vs 663696")


def enospc_midway(self, data):
    raise OSError(errno.ENOSPC, "No space left on device")  # torch turns it into "unexpected pos"


@pytest.mark.parametrize("target,name,failure", [
    (torch, "save", torch_short_write),
    (checkpoint._HashingWriter, "write", enospc_midway),
], ids=["torch-runtime-error", "oserror-enospc"])
def test_a_full_disk_names_the_checkpoint_and_keeps_the_previous_one(tmp_path, monkeypatch, target, name,
                                                                     failure):
    path = tmp_path / "run.pt"
    save_checkpoint(path, PAYLOAD)
    before = path.read_bytes()
    monkeypatch.setattr(target, name, failure)
    with pytest.raises(WriteError) as err:
        save_checkpoint(path, {**PAYLOAD, "step": 4})
    message = str(err.value)
    assert f"cannot write {path}: no space left on the device" in message
    assert f"The previous checkpoint {path} is intact" in message and "NBH_CHECKPOINT_DIR" in message
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]  # the partial file is gone
