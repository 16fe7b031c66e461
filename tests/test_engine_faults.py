"""Faults of the build's own state (issue 15, item 6): each gets one clear line and a
non-zero exit, no traceback, and the next build after the fix recovers.

Read-only folders are made with a read-only mount in a user namespace (`unshare -rm`), so
the tests hold when they run as root (CI does), where permission bits do not stop writes.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap

import pytest
from conftest import DoitResult, gemm_spec

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SPEC = gemm_spec("small").replace("M: [4, 8]", "M: [4]")
REPORT = "out/small/M4_N32_K16/tir-cpu/validation.json"


def unshare_ok() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rm", "true"], capture_output=True, check=False).returncode == 0


needs_unshare = pytest.mark.skipif(not unshare_ok(), reason="no user namespaces (unshare -rm) for read-only mounts")


def one_error_line(result: DoitResult, expected: str):
    assert result.code == 3, result.text
    assert "Traceback" not in result.text, result.text
    errors = [ln for ln in result.text.splitlines() if ln.startswith("ERROR: ")]
    assert errors == [f"ERROR: {expected}"], result.text


def passes(project):
    result = project.doit("build")
    assert result.code == 0, result.text
    assert json.loads((project.root / REPORT).read_text())["status"] == "pass"


def read_only_doit(project, folder, *args) -> DoitResult:
    """`doit` with `folder` mounted read-only (a bind mount in a private mount namespace)."""
    cmd = (f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder} && "
           f"exec {sys.executable} -m doit {' '.join(args)}")
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", cmd], cwd=project.root, env=project.env,
                          capture_output=True, text=True, timeout=600, check=False)
    return DoitResult(proc)


def test_out_below_a_regular_file(project):
    project.spec("small", SPEC)
    (project.root / "afile").write_text("not a folder")
    result = project.doit("build", env={"FUSEBUILD_OUT": "afile/out"})
    one_error_line(result, "build output folder afile/out (FUSEBUILD_OUT) is below the regular file afile: "
                           "set FUSEBUILD_OUT to a folder, or move that file")
    (project.root / "afile").unlink()
    assert project.doit("build", env={"FUSEBUILD_OUT": "afile/out"}).code == 0


def test_garbage_dependency_db(project):
    project.spec("small", SPEC)
    (project.root / "out").mkdir()
    (project.root / "out/.doit.db").write_bytes(b"garbage, not sqlite" * 100)
    one_error_line(project.doit("build"), "out/.doit.db is not a doit dependency database (file is not a database): "
                                          "remove it (every task then reruns once; the artifact cache restores "
                                          "their results)")
    (project.root / "out/.doit.db").unlink()
    passes(project)


@needs_unshare
def test_unwritable_out(project):
    project.spec("small", SPEC)
    passes(project)
    result = read_only_doit(project, project.root / "out", "build")
    one_error_line(result, "build output folder out cannot be written (Read-only file system): make it writable "
                           "or set FUSEBUILD_OUT to a folder that is")
    passes(project)


def test_full_disk_during_the_per_task_db_commit(project, tmp_path):
    """Simulated: every write to out/.doit.db fails as a full disk does (a sitecustomize
    shim in the doit process); the artifacts themselves are written."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(textwrap.dedent('''
        import sqlite3
        _connect = sqlite3.connect

        class Full(sqlite3.Connection):
            def execute(self, sql, *args):
                if sql.lstrip().lower().startswith(("insert", "delete")):
                    raise sqlite3.OperationalError("database or disk is full")
                return super().execute(sql, *args)

        def connect(database, *args, **kwargs):
            if str(database).endswith(".doit.db"):
                kwargs["factory"] = Full
            return _connect(database, *args, **kwargs)

        sqlite3.connect = connect
    '''))
    project.spec("small", SPEC)
    result = project.doit("build", env={"PYTHONPATH": f"{shim}:{project.env['PYTHONPATH']}"})
    one_error_line(result, "cannot record finished tasks in out/.doit.db (database or disk is full): their outputs "
                           "are written, but the next build reruns them; free space and build again")
    assert json.loads((project.root / REPORT).read_text())["status"] == "pass"   # built and validated
    passes(project)                                                    # the disk has space again


@needs_unshare
def test_read_only_cache_holding_a_corrupt_blob(project):
    project.spec("small", SPEC)
    passes(project)                                                    # the cache holds every stage
    blobs = sorted((project.cache / "cas").rglob("*"))
    blob = max((b for b in blobs if b.is_file()), key=lambda b: b.stat().st_size)
    blob.write_bytes(b"\0" * blob.stat().st_size)                      # corrupt, same size
    shutil.rmtree(project.root / "out")
    result = read_only_doit(project, project.cache, "build")
    assert result.code == 3 and "Traceback" not in result.text, result.text
    errors = [ln for ln in result.text.splitlines() if ln.startswith("ERROR: ")]
    assert len(errors) == 1 and errors[0].startswith(
        "ERROR: the artifact cache holds 1 corrupt entry it cannot delete (") and errors[0].endswith(
        "Read-only file system): remove them, or build with FUSEBUILD_CACHE=off"), result.text
    assert json.loads((project.root / REPORT).read_text())["status"] == "pass"   # rebuilt, correct
    shutil.rmtree(project.root / "out")
    passes(project)                                                    # writable again: read, deleted, healed
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
