"""The build engine end to end: why lines, dry run, resume after SIGKILL, damaged outputs,
early cutoff per stage, orphans, progress modes, the build report (counts, no timings)."""
from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, DoitResult, gemm_spec

pytestmark = pytest.mark.slow
ART = "out/one/M4_N32_K16/tir-cpu"


def why_of(result: DoitResult, task: str) -> str:
    m = re.search(rf"^\.  {re.escape(task)}  \[\d+/\d+\] (.*)$", result.text, re.M)
    assert m, result.text
    return m.group(1)


def fusebuild(project, *args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fusebuild", *args], cwd=project.root,
                          env=dict(project.env, **(env or {})),
                          capture_output=True, text=True, timeout=600)


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".doit.db" not in p.name}


def test_why_line_for_each_kind_of_change(project, tmp_path):
    path = project.spec("one", gemm_spec("one"))
    r = project.doit("build", check=0)
    assert why_of(r, "render:one/M4_N32_K16/tir-cpu") == "never built (or its last run failed or did not finish)"
    # a spec field
    path.write_text(gemm_spec("one", act="relu"))
    r = project.doit("build", check=0)
    assert why_of(r, "render:one/M4_N32_K16/tir-cpu") == "spec: graph.nodes[2].op silu -> relu"
    assert why_of(r, "compile:one/M4_N32_K16/tir-cpu") == f"input changed: {ART}/kernel.py"
    path.write_text(gemm_spec("one", act="relu").replace("seed: 3", "seed: 4"))
    r = project.doit("build", check=0)
    assert why_of(r, "validate:one/M4_N32_K16/tir-cpu") == "spec: seed 3 -> 4"
    # a template (the override folder shadows templates/tir/gemm.j2, then its content changes)
    folder = project.root / "overrides"
    (folder / "tir").mkdir(parents=True)
    src = (REPO / "templates/tir/gemm.j2").read_text()
    (folder / "tir/gemm.j2").write_text(src)
    project.env["FUSEBUILD_TEMPLATE_OVERRIDES"] = str(folder)
    r = project.doit("build", check=0)
    assert why_of(r, "render:one/M4_N32_K16/tir-cpu").startswith("template: gemm.j2 now comes from "), r.text
    (folder / "tir/gemm.j2").write_text("{# reviewed #}\n" + src)
    r = project.doit("build", check=0)
    assert why_of(r, "render:one/M4_N32_K16/tir-cpu") == f"template: {folder}/tir/gemm.j2 changed"
    # a toolchain version
    fake = tmp_path / "fakedist" / "apache_tvm-0.99.0.dist-info"
    fake.mkdir(parents=True)
    (fake / "METADATA").write_text("Metadata-Version: 2.1\nName: apache-tvm\nVersion: 0.99.0\n")
    env = {"PYTHONPATH": f"{fake.parent}:{REPO}"}
    assert "toolchain: versions.apache-tvm" in fusebuild(project, "why", "compile:one/M4_N32_K16/tir-cpu", env=env).stdout
    r = project.doit("build", check=0, env=env)
    assert why_of(r, "compile:one/M4_N32_K16/tir-cpu").startswith("toolchain: versions.apache-tvm 0.27"), r.text
    assert "-> 0.99.0" in why_of(r, "compile:one/M4_N32_K16/tir-cpu")
    # a missing output, and a truncated (damaged) artifact: both rebuilt, nothing else
    (project.root / ART / "kernel.o").unlink()
    so = project.root / "out/one/M8_N32_K16/tir-cpu/kernel.so"
    so.write_bytes(so.read_bytes()[:100])
    r = project.doit("build", check=0, env=env)
    assert why_of(r, "compile:one/M4_N32_K16/tir-cpu") == f"output missing: {ART}/kernel.o"
    assert why_of(r, "assemble:one/M8_N32_K16/tir-cpu") == (
        "output damaged: out/one/M8_N32_K16/tir-cpu/kernel.so is not the file its last run produced")
    assert sorted(r.ran) == ["assemble:one/M8_N32_K16/tir-cpu", "compile:one/M4_N32_K16/tir-cpu"], r.text
    assert json.loads((so.parent / "validation.json").read_text())["status"] == "pass"
    # the report of the last build says why
    md = (project.root / "out/report.md").read_text()
    assert "| one/M8_N32_K16/tir-cpu | pass |" in md and "assemble: output damaged" in md, md
    assert "apache-tvm: 0.99.0" in md and (project.root / "out/report.html").is_file()


def test_dry_run_runs_nothing_and_lists_what_build_runs(project):
    path = project.spec("one", gemm_spec("one"))
    project.doit("build", check=0)
    path.write_text(gemm_spec("one").replace("seed: 3", "seed: 5"))
    (project.root / ART / "kernel.o").unlink()
    before, db = snapshot(project.root), (project.root / "out/.doit.db").read_bytes()
    dry = fusebuild(project, "dry-run")
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


def test_sigkill_midway_then_restart_redoes_only_unfinished(project):
    project.spec("one", gemm_spec("one").replace("M: [4, 8]", "M: [2, 4, 6, 8, 10, 12]"))
    env = dict(project.env, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "doit", "build"], cwd=project.root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started = []
    for line in proc.stdout:
        m = re.match(r"^\.  (\S+)", line)
        if m:
            started.append(m.group(1))
        if len(started) == 14:              # 13 finished (one at a time), the 14th is running
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    finished = started[:-1]
    r = project.doit("build", check=0)
    assert not set(finished) & set(r.ran), r.text
    assert len(r.ran) in (24 - 13, 24 - 14), r.text       # the killed one reruns unless it had finished
    assert all(json.loads(p.read_text())["status"] == "pass" for p in (project.root / "out").rglob("validation.json"))
    assert project.doit("build", check=0).ran == []


def test_early_cutoff_at_every_stage(project):
    project.spec("one", gemm_spec("one"))
    project.doit("build", check=0)
    # each stage reruns when its output is gone; its identical output stops the rebuild there
    for stage, name in (("render", "kernel.py"), ("compile", "kernel.o"), ("assemble", "kernel.so"),
                        ("validate", "validation.json")):
        (project.root / ART / name).unlink()
        r = project.doit("build", check=0)
        assert r.ran == [f"{stage}:one/M4_N32_K16/tir-cpu"], (stage, r.text)


def test_orphans_are_reported_and_cleaned_but_a_bad_spec_keeps_its_outputs(project):
    one = project.spec("one", gemm_spec("one"))
    two = project.spec("two", gemm_spec("two"))
    three = project.spec("three", gemm_spec("three").replace("M: [4, 8]", "M: [4]"))
    project.doit("build", check=0)
    two.unlink()                                                   # a removed spec
    one.write_text(gemm_spec("one").replace("M: [4, 8]", "M: [4]"))  # a removed variant
    three.write_text(gemm_spec("three").replace("op: matmul", "op: matmull"))  # a spec that does not load
    r = project.doit("build")
    assert "note: 2 orphaned folder(s)" in r.text and "python -m fusebuild clean" in r.text, r.text
    assert "## Orphans" in (project.root / "out/report.md").read_text()
    listed = fusebuild(project, "orphans").stdout
    assert "out/two" in listed and "out/one/M8_N32_K16" in listed and "three" not in listed, listed
    cleaned = fusebuild(project, "clean")
    assert cleaned.returncode == 0 and "2 orphaned folder(s), 0 leftover(s) removed" in cleaned.stdout
    assert not (project.root / "out/two").exists() and not (project.root / "out/one/M8_N32_K16").exists()
    assert (project.root / ART / "kernel.so").is_file() and (project.root / "out/three/M4_N32_K16").is_dir()
    (project.root / ART / ".staging-x").mkdir()                    # a killed build's leftover
    assert "0 orphaned folder(s), 1 leftover(s)" in fusebuild(project, "orphans").stdout


def test_progress_modes(project):
    path = project.spec("one", gemm_spec("one"))
    project.doit("build", check=0)
    quiet = project.doit("build", check=0, env={"FUSEBUILD_PROGRESS": "quiet"})
    assert quiet.text.strip().startswith("fusebuild: 0 ran, 8 up to date, 0 failed"), quiet.text
    path.write_text(gemm_spec("one").replace("seed: 3", "seed: 9"))
    tty = project.doit("build", check=0, env={"FUSEBUILD_PROGRESS": "tty"})
    assert "\x1b[K[" in tty.text and "-- render" not in tty.text     # live line (\r reads as \n here), no up-to-date list
    ran = re.findall(r"^(?:\x1b\[K)?\.  (\S+)", tty.text, re.M)            # lines follow a cleared status line
    assert sorted(ran) == [f"validate:one/M{m}_N32_K16/tir-cpu" for m in (4, 8)], tty.text
    assert re.search(r"^one\s+M8_N32_K16\s+tir-cpu\s+pass", tty.text, re.M)  # the summary stays
