"""End to end through `doit`: build, validate, and rebuild only what changed (counted)."""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path


from conftest import REPO, gemm_spec

STAGES = ("render", "compile", "assemble", "validate")

EW_SPEC = """\
name: addmul
params:
  N: [8, 16]
inputs:
  a: {shape: [4, N], dtype: float32}
  b: {shape: [N], dtype: float32}
graph:
  - {op: add, inputs: [a, b], output: s}
  - {op: sigmoid, inputs: [s], output: y}
outputs: [y]
"""


def snapshot(root: Path) -> dict:
    """Every artifact file under `root` (not the DB, nor the build report, cache report and
    run log that every run rewrites: out/report.*, out/cache-report.json, out/.fusebuild/)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".doit.db" not in p.name
            and p.name != "cache-report.json" and not p.name.startswith("report.") and ".fusebuild" not in p.parts}


def test_build_validates_and_second_build_runs_nothing(project):
    project.spec("small", gemm_spec())
    first = project.doit("build", check=0)
    for stage in STAGES:
        assert len(first.ran_stage(stage)) == 2, first.text       # 2 variants x 1 target
    report = json.loads((project.root / "out/small/M8_N32_K16/tir-cpu/validation.json").read_text())
    assert report["status"] == "pass"
    for key in ("max_abs", "mean_abs", "max_rel", "bound", "ratio", "input_sets", "seed", "toolchain", "timings"):
        assert key in report
    assert report["toolchain"]["apache-tvm"] and set(report["timings"]) >= {"render", "compile", "assemble"}
    assert re.search(r"^small\s+M8_N32_K16\s+tir-cpu\s+pass", first.text, re.M)  # the summary table
    for f in ("kernel.py", "scheduled.py", "kernel.o", "kernel.so"):
        assert (project.root / "out/small/M8_N32_K16/tir-cpu" / f).is_file()
    second = project.doit("build", check=0)
    assert second.ran == [], second.text
    assert re.search(r"^small\s+M8_N32_K16\s+tir-cpu\s+pass", second.text, re.M)  # still summarized


def test_edit_one_spec_rebuilds_only_that_spec(project):
    project.spec("one", gemm_spec("one"))
    path = project.spec("two", gemm_spec("two"))
    project.doit("build", check=0)
    path.write_text(gemm_spec("two").replace("N: 32", "N: 48"))
    r = project.doit("build", check=0)
    assert sorted(r.ran) == sorted(f"{s}:two/M{m}_N48_K16/tir-cpu" for s in STAGES for m in (4, 8)), r.text


def test_seed_change_revalidates_only(project):
    path = project.spec("one", gemm_spec("one"))
    project.doit("build", check=0)
    path.write_text(gemm_spec("one").replace("seed: 3", "seed: 4"))
    r = project.doit("build", check=0)
    assert sorted(r.ran) == sorted(f"validate:one/M{m}_N32_K16/tir-cpu" for m in (4, 8)), r.text


def test_comment_and_whitespace_edit_reruns_nothing(project):
    path = project.spec("one", gemm_spec("one"))
    project.doit("build", check=0)
    path.write_text("# a comment\n" + gemm_spec("one").replace("outputs: [y]", "outputs:   [ y ]  # out"))
    r = project.doit("build", check=0)
    assert r.ran == [], r.text


def override(project, name: str, text: str) -> Path:
    folder = project.root / "overrides"
    (folder / "tir").mkdir(parents=True, exist_ok=True)
    (folder / "tir" / name).write_text(text)
    project.env["FUSEBUILD_TEMPLATE_OVERRIDES"] = str(folder)
    return folder / "tir" / name


def test_template_edit_rerenders_only_its_users_and_identical_output_cuts_off(project):
    project.spec("gemmspec", gemm_spec("gemmspec"))
    project.spec("addmul", EW_SPEC)
    project.doit("build", check=0)
    # elementwise.j2 is used only by addmul; a Jinja comment changes the template, not its output
    source = (REPO / "templates/tir/elementwise.j2").read_text()
    override(project, "elementwise.j2", "{# reviewed #}\n" + source)
    r = project.doit("build", check=0)
    assert sorted(r.ran) == sorted(f"render:addmul/N{n}/tir-cpu" for n in (8, 16)), r.text
    # a comment in the rendered source: render and compile rerun, the object is identical,
    # so assemble and validate do not (early cutoff on the compiled artifact)
    override(project, "elementwise.j2", source.replace("# {{ g.comment }}", "# elementwise: {{ g.comment }}"))
    r = project.doit("build", check=0)
    assert sorted(r.ran) == sorted(f"{s}:addmul/N{n}/tir-cpu" for s in ("render", "compile") for n in (8, 16)), r.text
    # a change of the computed value: every stage of addmul reruns, and validation catches it
    override(project, "elementwise.j2", source.replace("= {{ g.store }}", "= {{ g.store }} + T.float32(0.5)"))
    r = project.doit("build")
    assert sorted(r.ran) == sorted(f"{s}:addmul/N{n}/tir-cpu" for s in STAGES for n in (8, 16)), r.text
    assert r.code != 0 and re.search(r"^addmul\s+N8\s+tir-cpu\s+fail", r.text, re.M)


def test_toolchain_version_change_reruns_compile_onward(project, tmp_path):
    project.spec("one", gemm_spec("one"))
    project.doit("build", check=0)
    # a newer apache-tvm as package metadata sees it: a dist-info earlier on sys.path
    fake = tmp_path / "fakedist" / "apache_tvm-0.99.0.dist-info"
    fake.mkdir(parents=True)
    (fake / "METADATA").write_text("Metadata-Version: 2.1\nName: apache-tvm\nVersion: 0.99.0\n")
    r = project.doit("build", check=0, env={"PYTHONPATH": f"{fake.parent}:{REPO}"})
    assert sorted(r.ran) == sorted(f"{s}:one/M{m}_N32_K16/tir-cpu" for s in ("compile", "assemble", "validate")
                                   for m in (4, 8)), r.text
    report = json.loads((project.root / "out/one/M4_N32_K16/tir-cpu/validation.json").read_text())
    assert report["toolchain"]["apache-tvm"] == "0.99.0"


def test_planted_numeric_bug_is_caught(project):
    project.spec("one", gemm_spec("one"))
    project.env["FUSEBUILD_TEMPLATE_OVERRIDES"] = str(REPO / "tests/data/planted_drop_bias")
    r = project.doit("build")
    assert r.code != 0
    report = json.loads((project.root / "out/one/M8_N32_K16/tir-cpu/validation.json").read_text())
    assert report["status"] == "fail" and report["ratio"] > 1, report
    assert re.search(r"^one\s+M8_N32_K16\s+tir-cpu\s+fail", r.text, re.M), r.text


def test_bad_spec_fails_alone_and_out_is_untouched(project):
    good = project.spec("good", gemm_spec("good"))
    project.doit("build", check=0)
    before = snapshot(project.root / "out")
    project.spec("bad", gemm_spec("bad").replace("op: matmul", "op: matmull"))
    good.write_text(gemm_spec("good").replace("op: matmul", "op: matmull"))      # good becomes bad too
    r = project.doit("build")
    assert r.code != 0
    assert "Traceback" not in r.text
    assert "specs/bad.yaml:11: graph[0].op: unknown op 'matmull'; did you mean 'matmul'?" in r.text
    assert snapshot(project.root / "out") == before                              # nothing lost or changed
    good.write_text(gemm_spec("good"))
    r = project.doit("build")
    assert r.code != 0 and r.ran_stage("validate") == [], r.text                 # good is up to date again


def test_one_spec_alone_and_list(project):
    project.spec("one", gemm_spec("one"))
    project.spec("two", gemm_spec("two"))
    r = project.doit("build:one", check=0)
    assert {t.split(":")[1].split("/")[0] for t in r.ran} == {"one"}
    listing = project.doit("list", "--all", check=0).text
    assert "validate:two/M4_N32_K16/tir-cpu" in listing


def test_two_concurrent_builds_end_in_a_correct_state(project):
    project.spec("one", gemm_spec("one"))
    project.spec("two", gemm_spec("two"))
    cmd = [sys.executable, "-m", "doit", "build"]
    procs = [subprocess.Popen(cmd, cwd=project.root, env=project.env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    r = project.doit("build", check=0)
    assert r.ran_stage("compile") == [] and r.ran_stage("render") == [], r.text
    for report in (project.root / "out").rglob("validation.json"):
        assert json.loads(report.read_text())["status"] == "pass"


def test_removing_a_template_override_rerenders(project):
    project.spec("one", gemm_spec("one"))
    source = (REPO / "templates/tir/gemm.j2").read_text()
    override(project, "gemm.j2", source.replace("# {{ g.comment }}", "# overridden: {{ g.comment }}"))
    project.doit("build", check=0)
    project.env["FUSEBUILD_TEMPLATE_OVERRIDES"] = ""
    r = project.doit("build", check=0)
    assert sorted(r.ran_stage("render")) == sorted(f"render:one/M{m}_N32_K16/tir-cpu" for m in (4, 8)), r.text
    assert "overridden" not in (project.root / "out/one/M4_N32_K16/tir-cpu/kernel.py").read_text()
