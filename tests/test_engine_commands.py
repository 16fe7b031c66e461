"""engine/commands.py through real `doit`: `fusebuild dry-run` runs nothing, writes nothing,
and lists exactly what `doit build` then runs (run / after, with why)."""
from __future__ import annotations

import re

import pytest

from conftest import gemm_spec, snapshot

ART = "out/one/M4_N32_K16/tir-cpu"


@pytest.mark.e2e
@pytest.mark.slow
def test_dry_run_runs_nothing_and_lists_what_build_runs(project):
    path = project.spec("one", gemm_spec("one"))
    project.doit("build", check=0)
    path.write_text(gemm_spec("one").replace("seed: 3", "seed: 5"))
    (project.root / ART / "kernel.o").unlink()
    before, db = snapshot(project.root), (project.root / "out/.doit.db").read_bytes()
    dry = project.fusebuild("dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert snapshot(project.root) == before and (project.root / "out/.doit.db").read_bytes() == db
    lines = {name: state for state, name in re.findall(r"^(run|after)\s+(\S+)", dry.stdout, re.M)}
    assert lines == {"compile:one/M4_N32_K16/tir-cpu": "run", "assemble:one/M4_N32_K16/tir-cpu": "after",
                     "validate:one/M4_N32_K16/tir-cpu": "run", "validate:one/M8_N32_K16/tir-cpu": "run"}, dry.stdout
    assert "nothing was run" in dry.stdout
    r = project.doit("build", check=0)
    runs = {n for n, s in lines.items() if s == "run"}
    assert runs <= set(r.ran) <= set(lines), r.text
    assert "assemble:one/M4_N32_K16/tir-cpu" not in r.ran        # identical object: cut off
