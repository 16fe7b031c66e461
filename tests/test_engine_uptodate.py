"""An output whose bytes changed but kept its size and mtime is not taken as current
(issue 15, item 3): ctime moves with any write and cannot be set back."""
from __future__ import annotations

import os

from fusebuild.engine.uptodate import file_state, output_changed


def test_same_size_same_mtime_edit_is_seen(tmp_path):
    path = tmp_path / "kernel.so"
    path.write_bytes(b"good artifact bytes")
    state = file_state(path)
    assert not output_changed(path, state)
    st = os.stat(path)
    path.write_bytes(b"evil artifact bytes")                         # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))              # mtime put back
    assert os.stat(path).st_size == st.st_size and os.stat(path).st_mtime_ns == st.st_mtime_ns
    assert output_changed(path, state)


def test_rewritten_identical_bytes_are_current(tmp_path):
    path = tmp_path / "kernel.so"
    path.write_bytes(b"bytes")
    state = file_state(path)
    path.write_bytes(b"bytes")                                      # stat moved, content did not
    assert not output_changed(path, state)


def test_states_recorded_before_ctime_are_hashed(tmp_path):
    path = tmp_path / "kernel.so"
    path.write_bytes(b"bytes")
    old = file_state(path)[:3]                                      # [size, mtime, sha256]
    assert not output_changed(path, old)
    path.write_bytes(b"other")
    assert output_changed(path, old)
