"""Two specs whose artifacts are identical (same graph, params, seed; only `name:` differs)
share their cache entries, yet each artifact keeps its own identity: its row in the summary,
its validation.json and report.md name its own spec (run/stages.restamp, engine/outcomes)."""
from __future__ import annotations

import json

import pytest

from conftest import Project

TWIN = """\
name: {name}
params: {{M: 5, N: 7, K: 3, dtype: float32}}
inputs: {{x: {{shape: [M, K], dtype: $dtype}}, w: {{shape: [N, K], dtype: $dtype}}}}
graph: [{{op: matmul, inputs: [x, w], output: y, transpose_b: true, epilogue: [relu]}}]
outputs: [y]
targets: [tir-cpu]
"""
VARIANT = "M5_N7_K3_float32"


def twins(p: Project):
    for name in ("twin_a", "twin_b"):
        p.spec(name, TWIN.format(name=name))


def check(p: Project, text: str):
    for name in ("twin_a", "twin_b"):
        report = json.loads((p.root / "out" / name / VARIANT / "tir-cpu" / "validation.json").read_text())
        assert (report["spec"], report["variant"], report["target"]) == (name, VARIANT, "tir-cpu"), report
        assert report["status"] == "pass", report
        assert any(line.split()[:4] == [name, VARIANT, "tir-cpu", "pass"] for line in text.splitlines()), text
        assert f"| {name}/{VARIANT}/tir-cpu |" in (p.root / "out/report.md").read_text()
    rows = [ln.split()[0] for ln in text.splitlines() if ln.split()[1:3] == [VARIANT, "tir-cpu"]]
    assert sorted(rows) == ["twin_a", "twin_b"], text


@pytest.mark.e2e
@pytest.mark.slow
def test_twin_specs_keep_their_names_built_and_restored(tmp_path):
    p = Project(tmp_path / "p")
    twins(p)
    r = p.doit("build", check=0)
    check(p, r.text)
    # a fresh out/ on the same cache: every stage restored, the names still each its own
    q = Project(tmp_path / "q", cache=p.cache)
    twins(q)
    r = q.doit("build", check=0)
    assert q.cache_report()["stages"]["validate"]["local-hit"] == 2, r.text
    check(q, r.text)
