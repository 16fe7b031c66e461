"""Through `doit`: CI-style restored state, and the local artifact cache shared by checkouts."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from conftest import Project, gemm_spec

STAGES = ("render", "compile", "assemble", "validate")


def fresh_clone(src: Project, dest: Path, cache: Path) -> Project:
    """A copy of the project as CI sees it after `git clone` + restoring out/ from a cache:
    same content, every mtime new (and later than any the dependency DB recorded)."""
    shutil.copytree(src.root, dest, copy_function=shutil.copyfile)   # content only, no metadata
    later = time.time() + 100
    for p in dest.rglob("*"):
        os.utime(p, (later, later))
    return Project(dest, cache=cache)


def cache_report(project: Project) -> dict:
    return json.loads((project.root / "out/cache-report.json").read_text())


def test_fresh_clone_with_restored_state_runs_nothing_and_one_edit_rebuilds_one_spec(project, tmp_path):
    project.spec("one", gemm_spec("one"))
    project.spec("two", gemm_spec("two", act="relu"))
    project.doit("build", check=0)
    # an EMPTY local cache: zero executed tasks must come from the restored state, not hits
    clone = fresh_clone(project, tmp_path / "clone", cache=tmp_path / "empty-cache")
    r = clone.doit("build", check=0)
    assert r.ran == [], r.text
    assert len(r.skipped) >= 16, r.text
    assert "cache hit rate -" in r.text and cache_report(clone)["stages"]["compile"]["up-to-date"] == 4
    # one spec edited in that setting: only that spec's artifacts rebuild
    (clone.root / "specs/two.yaml").write_text(gemm_spec("two", act="relu").replace("N: 32", "N: 40"))
    r = clone.doit("build", check=0)
    assert sorted(r.ran) == sorted(f"{s}:two/M{m}_N40_K16/tir-cpu" for s in STAGES for m in (4, 8)), r.text
    assert cache_report(clone)["stages"]["compile"] == {"up-to-date": 2, "local-hit": 0, "remote-hit": 0,
                                                        "miss": 2, "uncached": 0, "failed": 0}


def test_two_checkouts_and_a_branch_switch_compile_once(project, tmp_path):
    project.spec("one", gemm_spec("one"))
    first = project.doit("build", check=0)
    assert len(first.ran_stage("compile")) == 2 and cache_report(project)["stages"]["compile"]["miss"] == 2
    # a second worktree of the same user (same cache dir), nothing restored: all hits
    other = Project(tmp_path / "worktree2", cache=project.cache)
    other.spec("one", gemm_spec("one"))
    r = other.doit("build", check=0)
    rep = cache_report(other)
    assert rep["hits"] == rep["lookups"] == 8 and rep["stages"]["compile"]["local-hit"] == 2, r.text
    assert "cache hit rate 100% (8/8" in r.text
    for m in (4, 8):
        rel = f"out/one/M{m}_N32_K16/tir-cpu/"
        for f in ("kernel.py", "kernel.o", "kernel.so", "validation.json"):
            assert (other.root / rel / f).read_bytes() == (project.root / rel / f).read_bytes()
    # branch switch: edit the spec, build, switch back: the old results come from the cache
    path = project.root / "specs/one.yaml"
    path.write_text(gemm_spec("one", act="gelu"))
    project.doit("build", check=0)
    assert cache_report(project)["stages"]["compile"]["miss"] == 2
    path.write_text(gemm_spec("one"))
    r = project.doit("build", check=0)
    assert len(r.ran_stage("compile")) == 2                              # doit reruns the tasks...
    assert cache_report(project)["stages"]["compile"]["local-hit"] == 2  # ...the tool does not run


def test_corrupt_local_object_is_rebuilt_not_used(project, tmp_path):
    project.spec("one", gemm_spec("one"))
    project.doit("build", check=0)
    damaged = 0
    for blob in (project.cache / "cas").rglob("*"):
        if blob.is_file() and blob.read_bytes()[:4] == b"\x7fELF":       # kernel.o and kernel.so
            blob.write_bytes(blob.read_bytes()[:100])                     # truncated
            damaged += 1
    assert damaged == 4
    other = Project(tmp_path / "worktree2", cache=project.cache)
    other.spec("one", gemm_spec("one"))
    r = other.doit("build", check=0)
    rep = cache_report(other)
    assert rep["stages"]["compile"]["miss"] == 2 and rep["stages"]["assemble"]["miss"] == 2, r.text
    assert len(rep["corrupt"]) == 4 and "corrupt entries discarded" in r.text
    for report in (other.root / "out").rglob("validation.json"):
        assert json.loads(report.read_text())["status"] == "pass"
