"""The compare helper and the reference: shape, NaN, tolerance, mismatches reported."""
from __future__ import annotations

import torch

from fusebuild.run import validate as V
from fusebuild.spec import parse_spec

SPEC = """
name: t
params: {K: [64]}
inputs: {x: {shape: [3, K], dtype: float32}, w: {shape: [5, K], dtype: float32}, b: {shape: [5], dtype: float32}}
graph:
  - {op: matmul, inputs: [x, w], output: y, transpose_b: true, epilogue: [{add: b}, {gelu: {approximate: tanh}}]}
outputs: [y]
"""


def test_reference_composes_op_references():
    g = parse_spec(SPEC, "t.yaml").variants[0].graph
    ins = V.make_inputs(g, seed=0)
    ref = V.reference(g, ins)
    want = torch.nn.functional.gelu(ins["x"] @ ins["w"].T + ins["b"], approximate="tanh")
    assert abs(float(ins["w"].std()) - 64 ** -0.5) < 0.05       # B operand drawn like nn.Linear
    assert torch.allclose(ref["y"], want, atol=1e-5)


def test_inputs_are_seeded():
    g = parse_spec(SPEC, "t.yaml").variants[0].graph
    assert torch.equal(V.make_inputs(g, 1)["x"], V.make_inputs(g, 1)["x"])
    assert not torch.equal(V.make_inputs(g, 1)["x"], V.make_inputs(g, 2)["x"])


def test_compare_passes_within_tolerance_and_reports_mismatches():
    ref = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    assert V.compare(ref + 1e-6, ref, 1e-4, 1e-4)["ok"]
    bad = ref.clone()
    bad[1, 2] += 1
    r = V.compare(bad, ref, 1e-4, 1e-4)
    assert not r["ok"] and r["mismatches"] == 1 and r["first_mismatches"][0]["index"] == [1, 2]
    assert abs(r["max_abs"] - 1.0) < 1e-6


def test_compare_never_passes_nan_or_wrong_shape():
    ref = torch.zeros(2, 2)
    nan = ref.clone()
    nan[0, 0] = float("nan")
    assert not V.compare(nan, ref, 1.0, 1.0)["ok"]
    assert not V.compare(torch.zeros(2, 3), ref, 1.0, 1.0)["ok"]


def test_tolerance_scales_with_k_and_honours_overrides():
    g = parse_spec(SPEC, "t.yaml").variants[0].graph
    big = parse_spec(SPEC.replace("K: [64]", "K: [4096]"), "t.yaml").variants[0].graph
    eps32 = 2.0 ** -23
    assert V.tolerance(big, "float32", {})[1] == 4 * eps32 + 64 * eps32 * 64
    assert V.tolerance(big, "bfloat16", {})[1] == 4 * 2.0 ** -7 + 64 * eps32 * 64
    ref = torch.tensor([3.0, -5.0])
    assert V.tolerance(g, "float32", {}, ref)[0] == 5 * V.tolerance(g, "float32", {})[1]
    assert V.tolerance(g, "float32", {"float32": {"atol": 0.5}})[0] == 0.5
