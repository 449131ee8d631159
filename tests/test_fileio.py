"""Atomic writes: leftovers of killed writes are found, and a failed write is told in words."""

import errno

import pytest

from nbhelpers.fileio import remove_partial_files, write_error


def test_remove_partial_files_takes_only_this_files_leftovers(tmp_path):
    names = [".a.json.abcd1234.part", ".a.json.bak.abcd1234.part", ".a.json.short.part", "a.json"]
    for name in names:
        (tmp_path / name).write_text("x")
    removed = remove_partial_files(tmp_path / "a.json")
    assert [p.name for p in removed] == [".a.json.abcd1234.part"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[1:])


@pytest.mark.parametrize("err,why", [
    (OSError(errno.ENOSPC, "No space left on device", "/x/.r.json.abcd1234.part"), "no space left on the device"),
    (OSError(errno.EROFS, "Read-only file system"), "the folder is not writable"),
    (PermissionError(errno.EACCES, "Permission denied"), "the folder is not writable"),
    (RuntimeError("[enforce fail at inline_container.cc:671] . unexpected pos 64 vs 0"),
     "no space left on the device"),
    (OSError(errno.EIO, "Input/output error"), "the write failed (Input/output error)"),
])
def test_write_error_names_the_file_the_cause_and_the_fix(err, why):
    message = str(write_error("/x/r.json", err, "Fix: do this."))
    assert message.startswith(f"cannot write /x/r.json: {why}") and message.endswith("Fix: do this.")
    assert ".part" not in message  # the temporary file is not the one the user knows
