"""Problems with the build's own state, each one clear line instead of a traceback.

Checked before doit opens anything (`check_out`, from Build.doit_config):
  FUSEBUILD_OUT below a regular file      out/ cannot be a folder there
  an out/ that cannot be written          read-only file system, no permission
  an out/.doit.db that is not a database  garbage, truncated, another program's file
Found while the build runs, reported after its summary (EngineReporter.complete_run):
  the per-task DB commit fails            a full disk (depdb.commit / the final dump)
  a corrupt cache entry cannot be deleted a read-only cache: it would be read (and
                                          rejected) by every build
Each raises `StateError`, which doit prints as `ERROR: <line>` with exit code 3 and no
traceback (doit treats InvalidDodoFile as a user error). The next build after the fix
recovers: nothing here writes or deletes anything.
"""
from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path

from doit.exceptions import InvalidDodoFile

from ..errors import printable


class StateError(InvalidDodoFile):
    """The build's folder, database or cache is unusable; the message says how to fix it."""


def check_out(out) -> None:
    """out/ exists (created if needed), is a folder we can write, and its DB is a database."""
    out = Path(out)
    shown = printable(str(out), keep="")
    blocker = next((p for p in [out, *out.parents] if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise StateError(f"build output folder {shown} (FUSEBUILD_OUT) is below the regular file "
                         f"{printable(str(blocker), keep='')}: set FUSEBUILD_OUT to a folder, or move that file")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".write-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise StateError(f"build output folder {shown} cannot be written ({err.strerror or err}): make it "
                         "writable or set FUSEBUILD_OUT to a folder that is") from None
    check_db(out / ".doit.db")


def check_db(path) -> None:
    """An existing dependency DB must be an sqlite3 database doit can read."""
    path = Path(path)
    if not path.exists():
        return
    try:
        conn = sqlite3.connect(path, timeout=30)
        try:
            conn.execute("select count(*) from sqlite_master").fetchone()
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return                      # locked by another build, or the like: doit waits or says so
    except sqlite3.DatabaseError as err:
        raise StateError(f"{printable(str(path), keep='')} is not a doit dependency database ({err}): remove it "
                         "(every task then reruns once; the artifact cache restores their results)") from None


def db_error(path, err: str) -> StateError:
    return StateError(f"cannot record finished tasks in {printable(str(path), keep='')} ({err}): their outputs "
                      "are written, but the next build reruns them; free space and build again")


def cache_error(stuck: list) -> StateError:
    return StateError(f"the artifact cache holds {len(stuck)} corrupt entr{'y' if len(stuck) == 1 else 'ies'} "
                      f"it cannot delete ({stuck[0]}): remove them, or build with FUSEBUILD_CACHE=off")
