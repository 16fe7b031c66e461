"""spec/load.py and `fusebuild check`, more bad input: an epilogue's internal tensor names never
clash with the spec's names nor show in a message, `check` refuses two specs of one folder that
share a name (as the build does), and every message names its field, says what would be valid,
and quotes values as the YAML spells them (null, not None)."""
from __future__ import annotations

import dataclasses

import pytest

from fusebuild.backends import TARGETS
from fusebuild.backends.limits import Limit
from fusebuild.cli import main as cli
from fusebuild.errors import SpecError
from fusebuild.spec import parse_spec
from test_spec_load import GOOD   # the one small valid spec these errors are made from

INTERNAL = ("y_mm", "y_e1")


def err(text: str, targets=None) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(text, "specs/op.yaml", targets)
    return str(info.value)


def outputs(text: str) -> list:
    return [n.output for n in parse_spec(text, "specs/op.yaml").variants[0].graph.nodes]


# --- 1. internal names ---------------------------------------------------------------------

def test_internal_names_of_a_spec_without_a_clash_are_unchanged():
    # artifacts, cache keys and tuning records name these: they must stay what they always were
    assert outputs(GOOD) == ["y_mm", "y_e1", "y"]


def test_an_input_named_like_an_internal_name_does_not_clash():
    text = GOOD.replace("  b: {shape: [N]", "  y_mm: {shape: [N]").replace("{add: b}", "{add: y_mm}")
    g = parse_spec(text, "specs/op.yaml").variants[0].graph
    assert [n.output for n in g.nodes] == ["y_mm_1", "y_e1", "y"]
    assert g.nodes[1].inputs == ("y_mm_1", "y_mm")          # the matmul result, plus the user's input
    assert g.inputs == ("x", "w", "y_mm")


def test_node_outputs_named_like_internal_names_do_not_clash():
    text = GOOD.replace("outputs: [y]", "  - {op: relu, inputs: [y], output: y_mm}\n"
                                        "  - {op: relu, inputs: [y_mm], output: y_e1}\noutputs: [y_e1]")
    assert outputs(text) == ["y_mm_1", "y_e1_1", "y", "y_mm", "y_e1"]


def test_a_reference_to_an_internal_name_is_not_defined():
    text = GOOD.replace("outputs: [y]", "  - {op: relu, inputs: [y_mm], output: z}\noutputs: [z]")
    assert err(text) == ("specs/op.yaml:12: graph[1].inputs: tensor 'y_mm' is not defined "
                         "(valid: inputs and node outputs: b, w, x, y)")
    assert err(GOOD.replace("outputs: [y]", "outputs: [y, y_mm]")) == (
        "specs/op.yaml:12: outputs: output 'y_mm' is not defined (valid: node outputs: y)")


def test_an_undefined_epilogue_operand_names_its_field_and_no_internal_name():
    text = GOOD.replace("  b: {shape: [N]", "  y_mm: {shape: [N]").replace("{add: b}", "{add: nothere}")
    assert err(text) == ("specs/op.yaml:11: graph[0].epilogue[0].add: tensor 'nothere' is not defined "
                         "(valid: inputs and node outputs: w, x, y_mm)")     # y_mm: the spec's own input
    assert err(GOOD.replace("{add: b}", "{add: bias}")) == (
        "specs/op.yaml:11: graph[0].epilogue[0].add: tensor 'bias' is not defined "
        "(valid: inputs and node outputs: b, w, x)")


@pytest.mark.parametrize("text,message", [
    (GOOD.replace("inputs: [x, w]", "inputs: [z, w]").replace("outputs: [y]", "  - {op: relu, inputs: [y], "
                                                                                "output: z}\noutputs: [z]"),
     "specs/op.yaml:11: graph: cyclic graph: z -> y -> z (valid: an acyclic graph (each tensor computed from "
     "earlier ones))"),
    (GOOD.replace("b: {shape: [N], dtype: float32}", "b: {shape: [N], dtype: float16}"),
     "specs/op.yaml:11: graph[0].epilogue[0].add: add mixes dtypes: the matmul result of y is float32, b is "
     "float16 (valid: operands of one dtype)"),
    (GOOD.replace("b: {shape: [N]", "b: {shape: [7]"),
     "specs/op.yaml:11: graph[0].epilogue[0].add: shape mismatch in add: the matmul result of y [2, 8] and b [7] "
     "do not broadcast (dimension -1: 8 vs 7) (valid: shapes that broadcast (numpy: each dimension, from the "
     "right, equal or 1 in one operand))"),
    (GOOD.replace("b: {shape: [N]", "b: {shape: [3, 1, N]"),
     "specs/op.yaml:11: graph[0].epilogue[0].add: shape mismatch in add: broadcasting the matmul result of y "
     "[2, 8] with b [3, 1, 8] grows both operands (valid: one operand of the result's shape, the other broadcast "
     "into it (each of its dimensions equal or 1))"),
    (GOOD.replace("outputs: [y]", "outputs: []"),
     "specs/op.yaml:12: outputs: a spec needs at least one output (valid: node outputs: y)"),
    (GOOD.replace("outputs: [y]", "  - {op: relu, inputs: [y], output: y}\noutputs: [y]"),
     "specs/op.yaml:12: graph[1].output: duplicate name 'y': already defined by graph[0].output (line 11) "
     "(valid: each tensor name defined once)"),
    (GOOD.replace("output: y,", "output: b,").replace("outputs: [y]", "outputs: [b]"),
     "specs/op.yaml:11: graph[0].output: duplicate name 'b': already defined as an input (line 9) "
     "(valid: each tensor name defined once)"),
])
def test_messages_about_an_epilogue_never_show_internal_names(text, message):
    assert err(text) == message
    assert not any(name in message for name in INTERNAL)


def test_a_target_limit_says_internal_names_as_the_spec_knows_them():
    fake = dataclasses.replace(TARGETS["tir-cpu"], name="fake",
                               load_check=lambda graph, hints: [Limit("cannot store y_mm next to y_e1", node="y_mm",
                                                                      valid="y_mm in one tile")])
    text = err(GOOD + "targets: [fake]\n", dict(TARGETS, fake=fake))
    assert text == ("specs/op.yaml:11: graph[0]: target fake (variant M=2, N=8, K=16): cannot store the matmul "
                    "result of y next to y after epilogue[0] (valid: the matmul result of y in one tile)")


# --- 2. check: two specs of one name -------------------------------------------------------

def test_check_refuses_two_specs_of_one_name_as_the_build_does(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text(GOOD.replace("name: op", "name: same"))
    (tmp_path / "b.yml").write_text(GOOD.replace("name: op", "name: same"))
    (tmp_path / "c.yaml").write_text(GOOD.replace("name: op", "name: other"))
    a, b = tmp_path / "a.yaml", tmp_path / "b.yml"
    want = (f"{a}:1: name: spec name 'same' is also used by {b} (valid: unique spec names)\n"
            f"{b}:1: name: spec name 'same' is also used by {a} (valid: unique spec names)\n")
    assert cli(["check", str(a), str(b)]) == 1
    got = capsys.readouterr()
    assert got.err == want and got.out == ""
    assert cli(["check", str(tmp_path)]) == 1                # a folder: as a build reads it
    got = capsys.readouterr()
    assert got.err == want and got.out == "other/M2_N8_K16: targets tir-cpu; mode fused\n" \
                                          "other/M4_N8_K16: targets tir-cpu; mode fused\n"
    assert cli(["check", str(a), str(a)]) == 0                # one file named twice is one spec
    capsys.readouterr()


def test_check_lets_specs_of_one_name_in_different_folders_be(tmp_path, capsys):
    for d in ("one", "two"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "a.yaml").write_text(GOOD)
    assert cli(["check", str(tmp_path / "one" / "a.yaml"), str(tmp_path / "two" / "a.yaml")]) == 0
    capsys.readouterr()


def test_check_of_a_folder_without_specs_says_so(tmp_path, capsys):
    assert cli(["check", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"{tmp_path}: no spec files (*.yaml, *.yml) (valid: spec files, or folders " \
                                      "holding them)\n"


# --- 3. messages ---------------------------------------------------------------------------

@pytest.mark.parametrize("text,message", [
    (GOOD + "seed: 99999999999999999999999\n",
     "specs/op.yaml:13: seed: an integer literal of 23 digits (valid: integers of at most 20 digits)"),
    (GOOD.replace("M: [2, 4]", "M: [2, 999999999999999999999999]"),
     "specs/op.yaml:3: params.M[1]: an integer literal of 24 digits (valid: integers of at most 20 digits)"),
    (GOOD.replace("  N: 8\n", "  N: 8\n  N: 9\n"),
     "specs/op.yaml:5: params.N: duplicate key 'N' (valid: each key once per mapping)"),
    (GOOD + "description: [1, 2]\n",
     "specs/op.yaml:13: description: expected a string, got a list [1, 2] (valid: one line for people)"),
    (GOOD + "seed: null\n",
     "specs/op.yaml:13: seed: expected an integer, got null (valid: random seed of the validation inputs)"),
    (GOOD.replace("M: [2, 4]", "M: null"),
     "specs/op.yaml:3: params.M: parameter value null is not a positive integer or a plain word (valid: positive "
     "integers, or words of letters/digits/_ such as float32)"),
    (GOOD.replace("N: 8", "N: true"),
     "specs/op.yaml:4: params.N: parameter value true is not a positive integer or a plain word (valid: positive "
     "integers, or words of letters/digits/_ such as float32)"),
    (GOOD.replace("M: [2, 4]", "M: {dynamic: [1, true]}"),
     "specs/op.yaml:3: params.M.dynamic: expected [lo, hi] with 1 <= lo < hi, got [1, true] (valid: two positive "
     "integers, lo < hi (a single size is a plain value: M: 128))"),
    (GOOD.replace("inputs: [x, w]", "input: [x, w]"),
     "specs/op.yaml:11: graph[0].input: unknown field 'input' for op matmul; did you mean 'inputs'? (the node has "
     "no 'inputs') (valid: acc_dtype, epilogue, inputs, op, output, transpose_b)"),
    (GOOD.replace("op: matmul", "opp: matmul"),
     "specs/op.yaml:11: graph[0].opp: unknown field 'opp'; did you mean 'op'? (the node has no 'op') (valid: "
     "acc_dtype, approximate, epilogue, inputs, op, output, transpose_b)"),
    (GOOD + "targets: [tir-cpu, mlir-cpu, tir-cpu]\n",
     "specs/op.yaml:13: targets: duplicate target 'tir-cpu' (valid: each target once: [tir-cpu, mlir-cpu])"),
    (GOOD.replace("outputs: [y]", "  - {op: relu, inputs: [y], output: z}\noutputs: [y, z, y]"),
     "specs/op.yaml:13: outputs: duplicate name 'y' in outputs (valid: each output once: [y, z])"),
    (GOOD.replace("inputs: [x, w]", "inputs: [x, w, b]"),
     "specs/op.yaml:11: graph[0].inputs: matmul takes 2 input tensor names, got ['x', 'w', 'b'] (valid: a list of "
     "2 names of inputs or earlier outputs, e.g. [x, w]; a bias goes in the epilogue: [{add: b}])"),
    (GOOD.replace("outputs: [y]", "  - {op: relu, inputs: [y, b], output: z}\noutputs: [z]"),
     "specs/op.yaml:12: graph[1].inputs: relu takes 1 input tensor name, got ['y', 'b'] (valid: a list of 1 name "
     "of inputs or earlier outputs, e.g. [x])"),
    (GOOD.replace("w: {shape: [N, K]", "w: {shape: [N, 12]"),
     "specs/op.yaml:11: graph[0].inputs: shape mismatch in matmul: K mismatch: x has K=16 (dimension 1) but w has "
     "K=12 (dimension 1, transpose_b) (valid: x as [M, K] and w as [N, K] (transpose_b: true) with the same K, "
     "e.g. w of shape [8, 16])"),
    (GOOD.replace("w: {shape: [N, K]", "w: {shape: [12, N]").replace("transpose_b: true", "transpose_b: false"),
     "specs/op.yaml:11: graph[0].inputs: shape mismatch in matmul: K mismatch: x has K=16 (dimension 1) but w has "
     "K=12 (dimension 0) (valid: x as [M, K] and w as [K, N] (transpose_b: false) with the same K, e.g. w of "
     "shape [16, 8])"),
    (GOOD.replace("float32", "bfloat16") + "targets: [mlir-cpu]\n",
     "specs/op.yaml:13: targets: target mlir-cpu does not support dtype bfloat16 (variant M=2, N=8, K=16) (valid: "
     "mlir-cpu dtypes: float32; restrict it with targets: {mlir-cpu: {dtype: [...]}})"),
    (GOOD + "targets:\n  tir-cpu: {M: [2]}\n",
     "specs/op.yaml:13: targets: no target matches the variant M=4, N=8, K=16 (valid: a target filter that matches "
     "every variant)"),
])
def test_messages_name_the_field_and_what_is_valid(text, message):
    assert err(text) == message
    for python in ("None", "True", "False", "LList", "LDict", "{'"):
        assert python not in message


def test_a_dynamic_variant_shows_as_its_range():
    text = GOOD.replace("M: [2, 4]", "M: {dynamic: [1, 64]}").replace("[M, K]", "[16, M]").replace(
        "[N, K]", "[N, M]").replace("  K: 16\n", "") + "targets: [tir-cpu]\n"
    assert err(text).startswith("specs/op.yaml:6: inputs.x.shape: target tir-cpu (variant M=1..64, N=8): ")


# --- 4. a dynamic dimension is never shown as its maximum ----------------------------------

def test_a_dynamic_k_mismatch_says_the_dimension_is_dynamic():
    text = GOOD.replace("M: [2, 4]", "M: {dynamic: [1, 8]}").replace("x: {shape: [M, K]", "x: {shape: [K, M]")
    assert err(text) == (
        "specs/op.yaml:11: graph[0].inputs: shape mismatch in matmul: K mismatch: x has K=M (dynamic 1..8) "
        "(dimension 1) but w has K=16 (dimension 1, transpose_b) (valid: x as [M, K] and w as [N, K] "
        "(transpose_b: true) with the same K; a dynamic size (M) only matches the same parameter, never a static K)")


def test_a_dynamic_broadcast_mismatch_says_the_dimension_is_dynamic():
    text = GOOD.replace("M: [2, 4]", "M: {dynamic: [1, 10]}").replace("b: {shape: [N]", "b: {shape: [10, N]")
    assert err(text) == (
        "specs/op.yaml:11: graph[0].epilogue[0].add: shape mismatch in add: the matmul result of y [M, 8] and "
        "b [10, 8] do not broadcast (dimension -2: M (dynamic 1..10) vs 10) (valid: shapes that broadcast (numpy: "
        "each dimension, from the right, equal or 1 in one operand); a dynamic dimension only matches the same "
        "parameter, or a static 1)")


@pytest.mark.parametrize("entry,message", [
    ("buckets: [0, 4]", "params.M.buckets: 0 is not a size: sizes are positive integers"),
    ("validate: [2.5]", "params.M.validate: 2.5 is not a size: sizes are positive integers"),
    ("validate: []", "params.M.validate: expected a non-empty list of sizes, got []"),
])
def test_a_dynamic_parameters_bad_size_is_named(entry, message):
    text = GOOD.replace("M: [2, 4]", "M: {dynamic: [1, 4], " + entry + "}")
    with pytest.raises(SpecError) as info:
        parse_spec(text, "specs/op.yaml")
    assert message in str(info.value), str(info.value)
