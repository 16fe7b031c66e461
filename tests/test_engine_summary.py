"""engine/summary.py: the summary table ends every build within 120 columns, and the artifacts
that one missing toolchain or device kept from running collapse into one line per target
naming the command that fixes it (never one row per artifact, never a clipped command)."""
from __future__ import annotations

import io
import re

import pytest

from fusebuild.backends import get_backend
from fusebuild.engine.summary import WIDTH, SummaryReporter

from conftest import REPO, variants

ENV_FIX = "python -m fusebuild env create tilelang"
LONG = "a_spec_name_as_long_as_a_name_may_be_0123456789_0123456789_abcd"       # 64 characters


def summary(reports, out) -> str:
    reporter = SummaryReporter(io.StringIO(), {})
    reporter.out = out
    reporter.write_summary(reports)
    return reporter.outstream.getvalue()


def too_wide(text: str) -> list:
    return [line for line in text.splitlines() if len(line) > WIDTH]


def test_every_shipped_artifact_fits_and_missing_toolchains_collapse(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSEBUILD_TOOLCHAINS", str(tmp_path / "no-envs"))
    not_run = get_backend("tir-cuda").toolchain()
    assert not not_run.available and ENV_FIX in not_run.reason
    reports = []
    for path in sorted((REPO / "specs").glob("*.yaml")):
        for v in variants(path):
            for target in v.targets:
                r = {"spec": v.spec, "variant": v.name, "target": target, "max_abs": 1.5e-6, "max_rel": 2.5e-4,
                     "timings": {"render": 12.5, "compile": 100.25}, "mode": "compare",
                     "status": "emulated" if target == "mlir-aie" else "pass"}
                if target == "tir-cuda":
                    r.update(status="not-run", reason=not_run.reason, mode="fused")
                reports.append(r)
    reports.append({"spec": LONG, "variant": "M4096_N4096_K4096_float32", "target": "mlir-aie", "status": "emulated",
                    "mode": "compare", "max_abs": 1.0, "max_rel": 1.0})
    reports += [{"spec": "gemm", "variant": f"M{m}_bfloat16", "target": "tir-cuda", "status": "built-not-validated",
                 "reason": "built, not validated: no CUDA device",
                 "fix": "fusebuild gpu-validate (on a machine with a Hopper GPU)"} for m in (1, 256)]
    text = summary(reports, tmp_path)
    assert not too_wide(text), too_wide(text)
    assert not re.search(r"^\S+\s+\S+\s+tir-cuda\s", text, re.M), text            # no row per tir-cuda artifact
    n_cuda = sum(1 for r in reports if r["target"] == "tir-cuda" and r["status"] == "not-run")
    specs = len({r["spec"] for r in reports if r["target"] == "tir-cuda" and r["status"] == "not-run"})
    assert f"tir-cuda: {n_cuda} artifact(s) of {specs} spec(s): no tilelang env: run `{ENV_FIX}`\n" in text, text
    lines = text.splitlines()
    built = lines.index("tir-cuda: 2 artifact(s) of 1 spec(s): built, not validated: no CUDA device")
    assert lines[built + 1] == "  next: fusebuild gpu-validate (on a machine with a Hopper GPU)"   # whole, unclipped
    assert f"{LONG[:20]}" in text and "…" in text                                  # the long name is clipped


@pytest.mark.e2e
def test_build_with_a_missing_toolchain_ends_in_one_line_naming_the_fix(project, tmp_path):
    project.spec("gemm_bias_silu_for_every_target", (REPO / "specs" / "gemm_bias_silu.yaml").read_text()
                 .replace("name: gemm_bias_silu", "name: gemm_bias_silu_for_every_target")
                 .replace("M: [1, 128]", "M: [1]").replace("N: 256", "N: 64").replace("K: 512", "K: 32"))
    (tmp_path / "no-envs").mkdir()
    r = project.doit("build", check=0, env={"FUSEBUILD_TOOLCHAINS": str(tmp_path / "no-envs"),
                                            "FUSEBUILD_PROGRESS": "plain"})
    lines = r.text.splitlines()
    last_task = max(i for i, line in enumerate(lines) if line.startswith((".  ", "-- ")))
    tail = lines[last_task + 1:]                                                  # the summary, not the progress
    assert tail and not [line for line in tail if len(line) > WIDTH], tail
    assert "tir-cuda: 2 artifact(s) of 1 spec(s): no tilelang env: run `python -m fusebuild env create tilelang`" \
        in tail, "\n".join(tail)
    assert not [line for line in tail if re.match(r"^\S+\s+\S+\s+tir-cuda\s", line)], "\n".join(tail)
    for target in ("tir-cpu", "mlir-cpu", "mlir-aie"):
        assert any(re.match(rf"^gemm_bias_silu_for_every_target\s+M1_N64_K32_float32\s+{target}\s", line)
                   for line in tail), target
