"""Filesystem writes that never leave a half-written file behind.

Every output goes to a temporary name in the same folder, then `os.replace` moves it
into place (atomic on POSIX): a build killed mid-write leaves the old file or none.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


def write_atomic(path, data, *, only_if_changed: bool = False) -> bool:
    """Write bytes/str atomically. With only_if_changed, identical content is left alone
    (its mtime too), which is what gives early cutoff downstream. Returns True if written."""
    path = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    if only_if_changed:
        try:
            if path.read_bytes() == raw:
                return False
        except OSError:
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.chmod(tmp, 0o666 & ~_umask())        # mkstemp makes 0600; outputs are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


@functools.lru_cache(maxsize=None)
def _umask() -> int:
    mask = os.umask(0)      # read once: setting it back right away (it is process-wide)
    os.umask(mask)
    return mask


def json_text(obj) -> str:
    """How fusebuild writes a JSON file (reports, plans, manifests): one form, so a file rewritten
    from its parsed content is byte-identical when nothing in it changed."""
    return json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n"


def write_json(path, obj, **kw) -> bool:
    return write_atomic(path, json_text(obj), **kw)


def read_json(path, default=None):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return default


@contextmanager
def staging(folder):
    """A temporary folder next to `folder`; on success its files are moved into `folder`
    one by one with os.replace (each atomic); on failure it is removed and `folder` is untouched."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=".staging-"))
    try:
        yield tmp
        for item in sorted(tmp.iterdir()):
            os.replace(item, folder / item.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
