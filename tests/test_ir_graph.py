"""Fusion: which nodes become one kernel, and the expression each kernel stores."""
from __future__ import annotations

from pathlib import Path

from fusebuild.ir.graph import Acc, Call, Load, broadcast_index, fuse
from fusebuild.spec import load_spec, parse_spec

REPO = Path(__file__).resolve().parent.parent


def graph_of(text):
    return parse_spec(text, "t.yaml").variants[0].graph


def test_epilogue_fuses_into_the_matmul():
    g = load_spec(REPO / "specs/gemm_bias_silu.yaml").variants[0].graph
    (group,) = fuse(g)
    assert group.output == "y" and group.matmul.op == "matmul"
    assert group.expr == Call("silu", (Call("add", (Acc(), Load("bias"))),))


def test_swiglu_is_three_gemm_groups_with_silu_and_mul_as_epilogues():
    g = load_spec(REPO / "specs/swiglu_prefill.yaml").variants[0].graph
    groups = fuse(g)
    assert [x.output for x in groups] == ["act", "h", "y"]
    assert groups[0].expr == Call("silu", (Acc(),))
    assert groups[1].expr == Call("mul", (Load("act"), Acc()))
    assert groups[2].expr == Acc()


def test_graph_output_is_not_fused_away():
    g = graph_of("""
name: t
inputs: {x: {shape: [2, 4], dtype: float32}, w: {shape: [4, 3], dtype: float32}}
graph:
  - {op: matmul, inputs: [x, w], output: y}
  - {op: relu, inputs: [y], output: z}
outputs: [y, z]
""")
    groups = fuse(g)
    assert [x.output for x in groups] == ["y", "z"] and groups[1].matmul is None


def test_tensor_with_two_consumers_is_materialized():
    g = graph_of("""
name: t
inputs: {x: {shape: [2, 4], dtype: float32}, w: {shape: [4, 3], dtype: float32}}
graph:
  - {op: matmul, inputs: [x, w], output: y}
  - {op: relu, inputs: [y], output: a}
  - {op: sigmoid, inputs: [y], output: b}
  - {op: mul, inputs: [a, b], output: z}
outputs: [z]
""")
    assert [x.output for x in fuse(g)] == ["y", "a", "z"]


def test_broadcast_index():
    assert broadcast_index((8,), ["i", "j"]) == ["j"]
    assert broadcast_index((1, 8), ["i", "j"]) == ["0", "j"]
    assert broadcast_index((4, 8), ["i", "j"]) == ["i", "j"]
