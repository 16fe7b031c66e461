"""backends/tir_cpu/backend.py through real `doit`: a weight in a tiled layout is scheduled,
compiled and validated (both tile shapes of the shipped spec pass)."""
from __future__ import annotations

import json

import pytest

from conftest import REPO


@pytest.mark.e2e
@pytest.mark.slow
def test_tir_cpu_validates_a_tiled_weight(project):
    project.spec("gemm_tiled_weight", (REPO / "specs" / "gemm_tiled_weight.yaml").read_text()
                 .replace("targets: [tir-cpu, mlir-aie]", "targets: [tir-cpu]"))
    project.doit("build", check=0)
    for wt in (8, 16):
        report = json.loads((project.root / f"out/gemm_tiled_weight/M32_N128_K256_wt{wt}_float32/tir-cpu/"
                             "validation.json").read_text())
        assert report["status"] == "pass", report
