"""Dynamic parameters in specs (spec/dynamic.py) and in the graph IR (Tensor.symbols,
Graph.dynamic / specialize): expansion into one dynamic variant and static buckets, the
sizes validated, and every syntax error pinned with its file:line:field."""
from __future__ import annotations

import json

import pytest

from fusebuild.backends import TARGETS
from fusebuild.cli import main as cli
from fusebuild.errors import SpecError
from fusebuild.spec import parse_spec
from fusebuild.spec.dynamic import default_buckets, samples
from fusebuild.spec.schema import spec_schema

BASE = """\
name: d
params:
  M: {m}
  N: 16
inputs:
  x: {{shape: {xs}, dtype: {dt}}}
  w: {{shape: [N, 16], dtype: float32}}
graph:
  - {{op: matmul, inputs: [x, w], output: y, transpose_b: true{ep}}}
outputs: [y]
targets: {targets}
"""


def spec(**over):
    kw = {"m": "{dynamic: [1, 10]}", "xs": "[M, 16]", "dt": "float32", "ep": "", "targets": "[tir-cpu, mlir-aie]"}
    kw.update(over)
    return BASE.format(**kw)


def test_dynamic_expands_into_one_artifact_and_buckets():
    s = parse_spec(spec(m="{dynamic: [1, 10], validate: [6]}"), "specs/d.yaml")
    names = [(v.name, v.targets) for v in s.variants]
    assert names[0] == ("M1to10_N16", ("tir-cpu",))
    assert names[1:] == [(f"M{b}_N16", ("mlir-aie",)) for b in (1, 2, 4, 8, 10)]
    dyn = s.variants[0]
    assert dyn.dynamic == {"M": (1, 10)} and dyn.params == {"M": (1, 10), "N": 16}
    assert dyn.samples == ({"M": 1}, {"M": 3}, {"M": 6}, {"M": 10})
    assert dyn.graph.tensors["x"].symbols == ("M", None) and dyn.graph.tensors["x"].shape == (10, 16)
    assert dyn.graph.tensors["y"].symbols == ("M", None)
    assert dyn.graph.tensors["w"].symbols == (None, None)
    assert [v.serves for v in s.variants[1:]] == [{"M": r} for r in ((1, 1), (2, 2), (3, 4), (5, 8), (9, 10))]
    assert all(not v.dynamic and not v.graph.dynamic and not v.samples for v in s.variants[1:])


def test_buckets_and_target_filters_pick_static_variants():
    s = parse_spec(spec(m="{dynamic: [1, 100], buckets: [1, 32, 100]}",
                        targets="{tir-cpu: null, mlir-aie: {M: [1, 32]}}"), "specs/d.yaml")
    assert [(v.name, v.targets) for v in s.variants] == [
        ("M1to100_N16", ("tir-cpu",)), ("M1_N16", ("mlir-aie",)), ("M32_N16", ("mlir-aie",))]


def test_only_dynamic_or_only_static_targets():
    assert [v.name for v in parse_spec(spec(targets="[tir-cpu, mlir-cpu]"), "s.yaml").variants] == ["M1to10_N16"]
    assert [v.name for v in parse_spec(spec(targets="[mlir-aie]"), "s.yaml").variants] == \
        ["M1_N16", "M2_N16", "M4_N16", "M8_N16", "M10_N16"]


def test_default_buckets_and_samples():
    assert default_buckets(1, 4096) == (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
    assert default_buckets(3, 100) == (4, 8, 16, 32, 64, 100)
    assert samples(1, 4096) == (1, 61, 4096)          # a prime below the geometric middle
    assert samples(1, 300, (77,)) == (1, 17, 77, 300)
    assert samples(8, 10) == (8, 10)                   # no prime inside: the ends


@pytest.mark.parametrize("over,message", [
    ({"xs": "[2*M, 16]"}, ("specs/d.yaml:6: inputs.x.shape: dynamic parameter 'M' is used inside the expression "
     "'2*M' (valid: a dynamic parameter only as a whole dimension ([M, K]); expressions of static parameters)")),
    ({"dt": "$M"}, ("specs/d.yaml:6: inputs.x.dtype: dynamic parameter 'M' can only be a whole dimension of a "
     "shape, not $M (valid: static parameters here; M as a shape entry: shape: [M, K])")),
    ({"m": "{dynamic: [0, 10]}"}, ("specs/d.yaml:3: params.M.dynamic: expected [lo, hi] with 1 <= lo < hi, got "
     "[0, 10] (valid: two positive integers, lo < hi (a single size is a plain value: M: 128))")),
    ({"m": "{dynamic: [10, 5]}"}, ("specs/d.yaml:3: params.M.dynamic: expected [lo, hi] with 1 <= lo < hi, got "
     "[10, 5] (valid: two positive integers, lo < hi (a single size is a plain value: M: 128))")),
    ({"m": "{dynamic: [1, 10], bucket: [1, 10]}"}, ("specs/d.yaml:3: params.M.bucket: unknown field 'bucket' of "
     "a dynamic parameter; did you mean 'buckets'? (valid: buckets, dynamic, validate)")),
    ({"m": "{buckets: [1, 10]}"}, ("specs/d.yaml:3: params.M: a mapping declares a dynamic parameter and needs "
     "'dynamic: [lo, hi]' (valid: M: {dynamic: [1, 4096]}, or a value or list of values)")),
    ({"m": "{dynamic: [1, 10], buckets: [1, 4, 8]}"}, ("specs/d.yaml:3: params.M.buckets: the largest bucket is "
     "8, so sizes 9..10 would have no artifact (valid: buckets ending at the maximum 10)")),
    ({"m": "{dynamic: [1, 10], buckets: [4, 1, 10]}"}, ("specs/d.yaml:3: params.M.buckets: buckets [4, 1, 10] "
     "must be strictly ascending (valid: ascending sizes without repeats)")),
    ({"m": "{dynamic: [2, 10], buckets: [1, 10]}"}, ("specs/d.yaml:3: params.M.buckets: size 1 is outside the "
     "dynamic range [2, 10] (valid: sizes in [2, 10])")),
    ({"m": "{dynamic: [1, 10], validate: [11]}"}, ("specs/d.yaml:3: params.M.validate: size 11 is outside the "
     "dynamic range [1, 10] (valid: sizes in [1, 10])")),
    ({"xs": "[M, 16], layout: {tiled: [2, 8]}"}, ("specs/d.yaml:6: inputs.x.layout: an input with a dynamic "
     "dimension cannot have a layout (its tiling would depend on the size) (valid: row_major for this input)")),
    ({"xs": "[4, 16]"}, ("specs/d.yaml:3: params.M: dynamic parameter 'M' is not a dimension of any input "
     "(valid: a dynamic parameter used as a whole dimension of an input shape, e.g. x: [M, K])")),
    ({"targets": "{tir-cpu: {M: [1, 2]}}"}, ("specs/d.yaml:11: targets.tir-cpu.M: tir-cpu builds one artifact "
     "for every M in [1, 10]: a filter on M only applies to targets that expand it into buckets (valid: no M "
     "filter for tir-cpu, or narrow the range of M)")),
])
def test_dynamic_syntax_errors(over, message):
    with pytest.raises(SpecError) as err:
        parse_spec(spec(**over), "specs/d.yaml")
    assert str(err.value) == message


def test_a_dynamic_dimension_only_matches_itself():
    text = spec(ep=", epilogue: [{add: r}]").replace("inputs:\n", "inputs:\n  r: {shape: [10, 16], dtype: float32}\n")
    with pytest.raises(SpecError) as err:
        parse_spec(text, "specs/d.yaml")
    assert str(err.value) == (
        "specs/d.yaml:10: graph[0].epilogue[0].add: shape mismatch in add -> y: the matmul result of y [M, 16] and "
        "r [10, 16] do not broadcast (dimension -2: M (dynamic 1..10) vs 10) (valid: shapes that broadcast (numpy: "
        "each dimension, from the right, equal or 1 in one operand); a dynamic dimension only matches the same "
        "parameter, or a static 1)")
    # a static 1 broadcasts against it, and the same parameter matches
    ok = spec(ep=", epilogue: [{add: c}, {mul: r}]", targets="[tir-cpu]").replace(
        "inputs:\n", "inputs:\n  c: {shape: [M, 1], dtype: float32}\n  r: {shape: [M, 16], dtype: float32}\n")
    y = parse_spec(ok, "specs/d.yaml").variants[0].graph.tensors["y"]
    assert y.symbols == ("M", None)


def test_graph_keys_specialize_and_subgraph():
    dyn = parse_spec(spec(), "s.yaml").variants[0].graph
    static10 = parse_spec(spec(m="10"), "s.yaml").variants[0].graph
    assert dyn.canonical()["dynamic"] == {"M": [1, 10]}
    assert dyn.canonical()["tensors"]["x"]["symbols"] == ["M", None]
    assert "symbols" not in static10.canonical()["tensors"]["x"] and "dynamic" not in static10.canonical()
    assert dyn.digest() != static10.digest()
    at10 = dyn.specialize({"M": 10})
    assert at10.canonical() == static10.canonical() and not at10.dynamic
    at3 = dyn.specialize({"M": 3, "unrelated": 5})
    assert at3.tensors["x"].shape == (3, 16) and at3.tensors["y"].shape == (3, 16)
    for bad in ({"M": 11}, {"M": 0}, {}):
        with pytest.raises(ValueError):
            dyn.specialize(bad)
    sub = dyn.subgraph(dyn.nodes[0])
    assert sub.dynamic == {"M": (1, 10)}


def test_check_says_how_each_target_gets_m(tmp_path, capsys):
    path = tmp_path / "d.yaml"
    path.write_text(spec(m="{dynamic: [1, 10], validate: [6]}", targets="[tir-cpu, mlir-cpu, mlir-aie]"))
    assert cli(["check", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("d: M is dynamic in [1, 10]; mlir-cpu, tir-cpu: one artifact taking M at run time, validated "
                      "at M = 1, 3, 6, 10; mlir-aie: static shapes only, expanded into buckets M = 1, 2, 4, 8, 10")
    assert out[1] == "d/M1to10_N16: targets tir-cpu, mlir-cpu; mode fused; M dynamic in [1, 10]"
    assert out[4] == "d/M4_N16: targets mlir-aie; mode fused; bucket of M: serves M = 3..4"


def test_check_names_the_sizes_a_bucket_filter_leaves_without_an_artifact(tmp_path, capsys):
    path = tmp_path / "d.yaml"
    path.write_text(spec(targets="{tir-cpu: {}, mlir-aie: {M: [1, 4]}}"))
    assert cli(["check", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith(
        "mlir-aie: static shapes only, expanded into buckets M = 1, 4 (no mlir-aie artifact for M = 5..10)")


def test_schema_declares_the_dynamic_form():
    options = spec_schema(TARGETS)["properties"]["params"]["additionalProperties"]["oneOf"]
    dyn = [o for o in options if o.get("type") == "object"]
    assert len(dyn) == 1 and dyn[0]["required"] == ["dynamic"] and not dyn[0]["additionalProperties"]
    assert set(dyn[0]["properties"]) == {"dynamic", "buckets", "validate"}
    assert dyn[0]["properties"]["dynamic"]["minItems"] == dyn[0]["properties"]["dynamic"]["maxItems"] == 2
    json.dumps(spec_schema(TARGETS))
