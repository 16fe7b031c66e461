"""engine/uptodate.py through real `doit`: each stage reruns when its output is gone and its
identical output stops the rebuild there (early cutoff); a fresh clone with out/ restored
(every mtime new, empty cache) runs nothing, and one edit rebuilds one spec. Without doit:
an output whose bytes changed but kept its size and mtime is not taken as current (issue
15, item 3): ctime moves with any write and cannot be set back."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from conftest import Project, gemm_spec
from fusebuild.engine.uptodate import file_state, output_changed

ART = "out/one/M4_N32_K16/tir-cpu"
STAGES = ("render", "compile", "assemble", "validate")


@pytest.mark.e2e
@pytest.mark.slow
def test_early_cutoff_at_every_stage(project):
    project.spec("one", gemm_spec("one"))
    project.doit("build", check=0)
    # each stage reruns when its output is gone; its identical output stops the rebuild there
    for stage, name in (("render", "kernel.py"), ("compile", "kernel.o"), ("assemble", "kernel.so"),
                        ("validate", "validation.json")):
        (project.root / ART / name).unlink()
        r = project.doit("build", check=0)
        assert r.ran == [f"{stage}:one/M4_N32_K16/tir-cpu"], (stage, r.text)

def fresh_clone(src: Project, dest: Path, cache: Path) -> Project:
    """A copy of the project as CI sees it after `git clone` + restoring out/ from a cache:
    same content, every mtime new (and later than any the dependency DB recorded)."""
    shutil.copytree(src.root, dest, copy_function=shutil.copyfile)   # content only, no metadata
    later = time.time() + 100
    for p in dest.rglob("*"):
        os.utime(p, (later, later))
    return Project(dest, cache=cache)


@pytest.mark.e2e
@pytest.mark.slow
def test_fresh_clone_with_restored_state_runs_nothing_and_one_edit_rebuilds_one_spec(project, tmp_path):
    project.spec("one", gemm_spec("one"))
    project.spec("two", gemm_spec("two", act="relu"))
    project.doit("build", check=0)
    # an EMPTY local cache: zero executed tasks must come from the restored state, not hits
    clone = fresh_clone(project, tmp_path / "clone", cache=tmp_path / "empty-cache")
    r = clone.doit("build", check=0)
    assert r.ran == [], r.text
    assert len(r.skipped) >= 16, r.text
    assert "cache hit rate -" in r.text and clone.cache_report()["stages"]["compile"]["up-to-date"] == 4
    # one spec edited in that setting: only that spec's artifacts rebuild
    (clone.root / "specs/two.yaml").write_text(gemm_spec("two", act="relu").replace("N: 32", "N: 40"))
    r = clone.doit("build", check=0)
    assert sorted(r.ran) == sorted(f"{s}:two/M{m}_N40_K16/tir-cpu" for s in STAGES for m in (4, 8)), r.text
    assert clone.cache_report()["stages"]["compile"] == {"up-to-date": 2, "local-hit": 0, "remote-hit": 0,
                                                         "miss": 2, "uncached": 0, "failed": 0}


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
