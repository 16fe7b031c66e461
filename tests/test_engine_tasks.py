"""engine/tasks.py through real `doit`: build, validate, and rebuild only what changed
(counted); a bad spec fails alone; one spec alone; the task list and `doit help build`."""
from __future__ import annotations

import json
import re

import pytest

from conftest import REPO, gemm_spec, snapshot

pytestmark = pytest.mark.e2e
STAGES = ("render", "compile", "assemble", "validate")


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


def test_bad_spec_fails_alone_and_out_is_untouched(project):
    good = project.spec("good", gemm_spec("good"))
    project.doit("build", check=0)
    before = snapshot(project.root / "out", run_records=False)
    project.spec("bad", gemm_spec("bad").replace("op: matmul", "op: matmull"))
    good.write_text(gemm_spec("good").replace("op: matmul", "op: matmull"))      # good becomes bad too
    r = project.doit("build")
    assert r.code != 0
    assert "Traceback" not in r.text
    assert "specs/bad.yaml:11: graph[0].op: unknown op 'matmull'; did you mean 'matmul'?" in r.text
    assert snapshot(project.root / "out", run_records=False) == before                              # nothing lost or changed
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


def test_build_help_names_the_modes(project):
    assert "FUSEBUILD_MODE=fused|separate|reference|compare" in project.doit("help", "build", check=0).text
