"""spec/load.py: the shipped specs load, and every kind of bad input gets one clear
error naming file, line and field, with what would be valid."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from fusebuild.errors import SpecError
from fusebuild.spec import load_spec, parse_spec, variant_name

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted((REPO / "specs").glob("*.yaml"))

GOOD = """\
name: op
params:
  M: [2, 4]
  N: 8
  K: 16
inputs:
  x: {shape: [M, K], dtype: float32}
  w: {shape: [N, K], dtype: float32}
  b: {shape: [N], dtype: float32}
graph:
  - {op: matmul, inputs: [x, w], output: y, transpose_b: true, epilogue: [{add: b}, silu]}
outputs: [y]
"""


def err(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse_spec(textwrap.dedent(text), "specs/op.yaml")
    return info.value


def test_shipped_specs_load_with_at_least_two_variants():
    names = {load_spec(p).name for p in SHIPPED}
    assert {"gemm", "gemm_bias_relu", "gemm_bias_silu", "gemm_bias_gelu", "swiglu_prefill"} <= names
    for p in SHIPPED:
        assert len(load_spec(p).variants) >= 2, p


def test_iron_swiglu_shape_is_shipped():
    spec = load_spec(REPO / "specs" / "swiglu_prefill.yaml")
    assert "M256_E512_H2048_float32" in [v.name for v in spec.variants]


def test_good_spec_expands_and_infers_shapes():
    spec = parse_spec(GOOD, "specs/op.yaml")
    assert [v.name for v in spec.variants] == ["M2_N8_K16", "M4_N8_K16"]
    g = spec.variants[1].graph
    assert [n.op for n in g.nodes] == ["matmul", "add", "silu"]
    assert g.tensors["y"].shape == (4, 8) and g.tensors["y"].dtype == "float32"


def test_variant_names_are_readable():
    assert variant_name({"M": 128, "N": 1024, "K": 1024, "dtype": "float32"}) == "M128_N1024_K1024_float32"


CASES = [
    # (what, spec text, line, field, message fragment, valid fragment)
    ("yaml syntax", GOOD.replace("outputs: [y]", "outputs: [y"), 13, None, "YAML syntax error", "well-formed"),
    ("unknown op", GOOD.replace("op: matmul", "op: matmull"), 11, "graph[0].op", "unknown op 'matmull'; did you mean 'matmul'?", "add, gelu"),
    ("unknown field", GOOD + "taregts: [tir-cpu]\n", 13, "taregts", "unknown field 'taregts'; did you mean 'targets'?", "description"),
    ("missing field", GOOD.replace("outputs: [y]\n", ""), 1, "outputs", "missing required field 'outputs'", None),
    ("unknown node field", GOOD.replace("transpose_b: true", "transpose: true"), 11, "graph[0].transpose", "unknown field 'transpose' for op matmul; did you mean 'transpose_b'?", "transpose_b"),
    ("used before defined", GOOD.replace(
        "  - {op: matmul", "  - {op: relu, inputs: [y], output: z}\n  - {op: matmul").replace("outputs: [y]", "outputs: [z]"),
        11, "graph[0].inputs", "tensor 'y' is used before it is defined (at line 12)", "dependency order"),
    ("undefined tensor", GOOD.replace("{add: b}", "{add: bias}"), 11, "graph[0].epilogue[0].add", "tensor 'bias' is not defined", "b, w, x"),
    ("shape mismatch", GOOD.replace("w: {shape: [N, K]", "w: {shape: [N, 12]"), 11, "graph[0].inputs", "K mismatch: x has K=16 (dimension 1) but w has K=12", "w of shape [8, 16]"),
    ("unknown dtype", GOOD.replace("b: {shape: [N], dtype: float32}", "b: {shape: [N], dtype: float23}"), 9, "inputs.b.dtype", "unknown dtype 'float23'; did you mean 'float32'?", "bfloat16, float16, float32"),
    ("cyclic graph", GOOD.replace("graph:\n", "graph:\n  - {op: relu, inputs: [z], output: q}\n  - {op: relu, inputs: [q], output: z}\n"),
        12, "graph", "cyclic graph: q -> z -> q", "acyclic"),
    ("duplicate tensor", GOOD.replace("output: y,", "output: x,").replace("outputs: [y]", "outputs: [x]"), 11, "graph[0].output", "duplicate name 'x'", "each tensor name defined once"),
    ("duplicate key", GOOD.replace("  N: 8\n", "  N: 8\n  N: 9\n"), 5, "params.N", "duplicate key 'N'", None),
    ("undefined parameter", GOOD.replace("[N, K]", "[Q, K]"), 8, "inputs.w.shape", "undefined parameter 'Q' in 'Q'", "integers and expressions"),
    ("empty parameter list", GOOD.replace("M: [2, 4]", "M: []"), 3, "params.M", "empty parameter list", "non-empty list"),
    ("escaping name", GOOD.replace("name: op", "name: ../x"), 1, "name", "'../x' is not a plain name", "letters, digits"),
    ("absolute name", GOOD.replace("name: op", "name: /abs"), 1, "name", "'/abs' is not a plain name", None),
    ("escaping tensor name", GOOD.replace("output: y,", "output: ../y,").replace("outputs: [y]", "outputs: ['../y']"), 11, "graph[0].output", "not a plain name", None),
    ("escaping param value", GOOD.replace("M: [2, 4]", "M: [2, '../4']"), 3, "params.M", "is not a positive integer or a plain word", None),
    ("unknown target", GOOD + "targets: [tir-gpu]\n", 13, "targets", "unknown target 'tir-gpu'", "tir-cpu"),
    ("bad epilogue op", GOOD.replace("silu]", "swish]"), 11, "graph[0].epilogue[1]", "unknown epilogue op 'swish'", "relu"),
    ("bad attribute value", GOOD.replace("transpose_b: true", "transpose_b: 3"), 11, "graph[0].transpose_b", "expected true/false, got 3", None),
    ("not a mapping", "- 1\n- 2\n", 1, None, "the spec must be a mapping", "fields"),
    ("bad shape expr", GOOD.replace("[M, K]", "[M, __import__('os')]"), 7, "inputs.x.shape", "may only use integers", None),
]


@pytest.mark.parametrize("what,text,line,field,message,valid", CASES, ids=[c[0] for c in CASES])
def test_bad_spec_errors(what, text, line, field, message, valid):
    e = err(text)
    assert e.path == "specs/op.yaml"
    assert e.line == line, str(e)
    assert e.field == field, str(e)
    assert message in e.message, str(e)
    if valid:
        assert valid in (e.valid or ""), str(e)
    # the printed form leads with file:line
    assert str(e).startswith(f"specs/op.yaml:{line}: "), str(e)


def test_yaml_tags_cannot_build_objects():
    e = err("name: !!python/object/apply:os.system ['echo pwned']\n")
    assert "YAML" in e.message


def test_target_filter_selects_variants_by_params():
    spec = parse_spec(GOOD + "targets:\n  tir-cpu: {M: [2, 4]}\n", "specs/op.yaml")
    assert [v.targets for v in spec.variants] == [("tir-cpu",), ("tir-cpu",)]
    e = err(GOOD + "targets:\n  tir-cpu: {M: [2]}\n")
    assert e.message == "no target matches the variant M=4, N=8, K=16" and e.line == 13
    e = err(GOOD + "targets:\n  tir-cpu: {Q: [2]}\n")
    assert "filter on undefined parameter 'Q'" in e.message and e.field == "targets.tir-cpu.Q"


def test_target_that_lacks_a_dtype_is_refused_with_the_fix():
    text = GOOD.replace("  K: 16\n", "  K: 16\n  dtype: [float32, bfloat16]\n").replace("float32}", "$dtype}")
    e = err(text + "targets: [tir-cpu]\n")
    assert "target tir-cpu does not support dtype bfloat16" in e.message
    assert "restrict it with targets: {tir-cpu: {dtype: [...]}}" in e.valid
