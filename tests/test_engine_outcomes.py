"""Every artifact a spec declares appears in the summary, quiet output and report.md, with
the stage it failed in and one line of reason; a stale pass never survives (issue 15,
item 3)."""
from __future__ import annotations

import json
import re

import pytest
from conftest import REPO, gemm_spec

from fusebuild.engine.outcomes import artifact_reports, reason_line

SPEC = gemm_spec("two").replace("M: [4, 8]", "M: [4]") + "targets: [tir-cpu, mlir-cpu]\n"


def test_reason_line_strips_the_stage_prefix_and_clips():
    assert reason_line("compile a/b/c: tvm.error.InternalError: boom\n  more", "compile:a/b/c") == \
        "tvm.error.InternalError: boom"
    assert len(reason_line("x" * 1000)) == 300


def test_outcomes_name_the_first_failed_stage_and_never_read_a_stale_report(tmp_path):
    stale = tmp_path / "validation.json"
    stale.write_text(json.dumps({"spec": "s", "variant": "v", "target": "t", "status": "pass"}))
    failures = {"assemble:s/v/t": "ld: cannot find -lfoo", "compile:s/v/t/nodes/y": "bad IR",
                "validate:s/v/t": "Dependent task failed"}
    (r,) = artifact_reports([("validate:s/v/t", stale)], failures, started=0.0)
    assert (r["status"], r["stage"], r["reason"]) == ("not built", "compile", "compile failed: bad IR")
    (r,) = artifact_reports([("validate:s/v/t", stale)], {"validate:s/v/t": "crashed"}, started=1e12)
    assert (r["status"], r["stage"], r["reason"]) == ("fail", "validate", "crashed")      # report older than the run
    (r,) = artifact_reports([("validate:s/v/t", tmp_path / "missing.json")], {}, started=0.0)
    assert (r["status"], r["reason"]) == ("not built", "did not run")


def plant(tmp_path, folder: str, name: str, old: str, new: str):
    src = (REPO / "templates" / folder / name).read_text()
    assert old in src
    (tmp_path / "o" / folder).mkdir(parents=True, exist_ok=True)
    (tmp_path / "o" / folder / name).write_text(src.replace(old, new, 1))


@pytest.mark.e2e
@pytest.mark.slow
def test_render_and_compile_failures_are_in_every_summary(project, tmp_path):
    project.spec("two", SPEC)
    first = project.doit("build")
    assert first.code == 0, first.text                                  # both pass: reports now say pass
    # mlir-cpu's render fails (an undefined template variable); tir-cpu's compile fails (bad TVMScript)
    plant(tmp_path, "mlir", "kernel.mlir.j2", "func.func @main(", "{{ no_such_variable }}func.func @main(")
    plant(tmp_path, "tir", "kernel.py.j2", "@T.prim_func(s_tir=True)", "@T.prim_func(s_tir=True)\n)(")
    env = {"FUSEBUILD_TEMPLATE_OVERRIDES": str(tmp_path / "o")}
    for progress in ("plain", "quiet"):
        result = project.doit("build", env=dict(env, FUSEBUILD_PROGRESS=progress))
        assert result.code != 0 and "Traceback" not in result.text.split("output:")[0], result.text
        rows = {m.group(1): m.group(2) for m in re.finditer(r"^two +M4_N32_K16 +(\S+) +(.*?)  +", result.text, re.MULTILINE)}
        assert rows["mlir-cpu"].startswith("not built: render failed: "), result.text
        assert rows["tir-cpu"].startswith("not built: compile failed: "), result.text
        md = (project.root / "out/report.md").read_text()
        assert "Artifacts: 2 not built" in md, md
        assert "| two/M4_N32_K16/tir-cpu | not built (compile failed: " in md, md
        assert "| two/M4_N32_K16/mlir-cpu | not built (render failed: jinja2.exceptions.UndefinedError: " \
               "'no_such_variable' is undefined)" in md, md
        assert "pass" not in md.split("Artifacts:")[1].split("\n")[0]
