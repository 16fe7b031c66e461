"""plan/artifacts.py: which units each dispatch mode builds, where they live, and the
invocation's mode written into the variant (planning only: no toolchain)."""
from __future__ import annotations

from pathlib import Path

from fusebuild.plan.artifacts import units

from conftest import SWIGLU_V, swiglu_artifact as artifact

SWIGLU_NODES = ["gate", "up", "act", "h", "y"]


def test_units_per_mode():
    assert units(artifact("fused")) == [artifact("fused")]
    assert units(artifact("reference")) == []
    for mode in ("separate", "compare"):
        us = units(artifact(mode))
        assert [u.node for u in us] == SWIGLU_NODES
        assert us[2].dir == Path(f"out/swiglu_prefill/{SWIGLU_V}/mlir-cpu/nodes/act")
        assert us[2].id == f"swiglu_prefill/{SWIGLU_V}/mlir-cpu/nodes/act"
        act = us[2].variant.graph
        assert act.inputs == ("gate",) and act.outputs == ("act",) and [n.op for n in act.nodes] == ["silu"]
