"""Make doit's dependency DB durable task by task, without forking doit.

doit 0.37 keeps every task's new record in memory and writes them all when the run
ends: a build killed by SIGTERM/SIGKILL forgets everything it finished. doit saves a
task's record (`Dependency.save_success`) right before it calls the reporter's
`add_success`; the reporter calls `commit(dep_manager, task.name)` there, which writes
that one record to the sqlite3 file and commits. A killed build then loses at most the
tasks that were running; their outputs are written atomically (fsutil), so whatever a
killed task left is either the old file or nothing, and its stale record cannot match.

The DB is switched to WAL (readers never block the writer; each commit is one small
transaction), and writes wait up to 30 s for a lock: two builds in one tree interleave
their commits instead of failing. A commit that fails (a full disk) does not stop the
build: the error is kept (`error`) and the reporter fails the run after its summary.
This relies on the sqlite3 backend's (`SqliteDB`)
connection and cache attributes, pinned by `doit==0.37.0`; with another backend it
does nothing and doit's end-of-run write is all there is (`supported()` says which).
"""
from __future__ import annotations

import sqlite3

from doit.dependency import SqliteDB

ERROR = "_fusebuild_db_error"       # attribute of the dep manager: the first error writing the DB


def error(dep_manager) -> str | None:
    """The first error writing the DB in this run (a full disk), or None."""
    return getattr(dep_manager, ERROR, None)


def supported(dep_manager) -> bool:
    b = getattr(dep_manager, "backend", None)
    return isinstance(b, SqliteDB) and all(hasattr(b, a) for a in ("_conn", "_cache", "_dirty", "codec"))


def prepare(dep_manager) -> bool:
    """WAL mode and a generous lock timeout. Returns whether per-task commits are on."""
    _guard_close(dep_manager)
    if not supported(dep_manager):
        return False
    conn = dep_manager.backend._conn
    try:
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")    # WAL + NORMAL: durable across process kills
    except sqlite3.OperationalError:
        pass                                           # another process holds it: keep its mode
    return True


def commit(dep_manager, task_name: str) -> None:
    """Write `task_name`'s record now (after doit saved or removed it in memory)."""
    if not supported(dep_manager):
        return
    b = dep_manager.backend
    try:
        if task_name in b._dirty and task_name in b._cache:
            b._conn.execute("insert or replace into doit values (?,?)",
                            (task_name, b.codec.encode(b._cache[task_name])))
            b._dirty.discard(task_name)
        if b._conn.in_transaction:                     # also a `remove` doit made for a failure
            b._conn.commit()
    except sqlite3.Error as err:                       # a full disk: the build goes on, and fails at its end
        _note(dep_manager, err)


def _note(dep_manager, err):
    if error(dep_manager) is None:
        try:
            setattr(dep_manager, ERROR, str(err) or type(err).__name__)
        except AttributeError:
            pass


def _guard_close(dep_manager):
    """doit writes the DB once more when the run ends (Dependency.close); on a full disk
    that raised out of doit's runner as a traceback. Keep the error for the reporter,
    which reports it after the summary (engine/faults.db_error)."""
    close = getattr(dep_manager, "close", None)
    if close is None or getattr(close, "_guarded", False):
        return

    def guarded():
        try:
            close()
        except (sqlite3.Error, OSError) as err:
            _note(dep_manager, err)
    guarded._guarded = True
    try:
        dep_manager.close = guarded
    except AttributeError:
        pass
