"""mlir-aie fixes: a fused chain of elementwise nodes (no GEMM) renders and emulates; kernels
whose operand object differs get distinct names (the GPT-2 MLP with two bias epilogues);
tensor names that are C/C++ keywords or the generator's own local names break nothing."""
from __future__ import annotations

import re

import pytest

from fusebuild.backends.mlir_aie import aieparse, kernels, rules
from fusebuild.backends.mlir_aie.emulate import EmulationError

from conftest import build, check_against_torch, refused, render, run_and_compare, variants

EW_CHAIN = """\
name: ew1
params: {M: [4], N: 32, dtype: float32}
inputs:
  x: {shape: [M, N], dtype: $dtype}
  b: {shape: [N], dtype: $dtype}
graph:
  - {op: add, inputs: [x, b], output: t}
  - {op: gelu, inputs: [t], output: y}
outputs: [y]
targets: [mlir-aie]
"""

# every step kind: rsub of a row operand, unary steps, a full-shape operand; a column operand
EW_CHAINS = ["""\
name: ewa
params: {M: [6], N: 64, dtype: [float32, bfloat16]}
inputs:
  x: {shape: [M, N], dtype: $dtype}
  b: {shape: [N], dtype: $dtype}
graph:
  - {op: sub, inputs: [b, x], output: t}
  - {op: silu, inputs: [t], output: u}
  - {op: mul, inputs: [x, u], output: v}
  - {op: gelu, inputs: [v], output: y, approximate: tanh}
outputs: [y]
targets: [mlir-aie]
""", """\
name: ewb
params: {M: [8], N: 32, dtype: [float32, bfloat16]}
inputs:
  x: {shape: [M, N], dtype: $dtype}
  c: {shape: [M, 1], dtype: $dtype}
graph:
  - {op: relu, inputs: [x], output: r}
  - {op: sigmoid, inputs: [r], output: s}
  - {op: sub, inputs: [c, s], output: y}
outputs: [y]
targets: [mlir-aie]
"""]

TWO_BIAS = """\
name: two_bias
params: {{M: [3], E: {E}, H: {H}, dtype: {dtype}}}
inputs:
  x: {{shape: [M, E], dtype: $dtype}}
  w1: {{shape: [E, H], dtype: $dtype}}
  b1: {{shape: [H], dtype: $dtype}}
  w2: {{shape: [H, E], dtype: $dtype}}
  b2: {{shape: [E], dtype: $dtype}}
graph:
  - {{op: matmul, inputs: [x, w1], output: h, epilogue: [{{add: b1}}]}}
  - {{op: matmul, inputs: [h, w2], output: y, epilogue: [{{add: b2}}]}}
outputs: [y]
targets: [mlir-aie]
"""


def declared(design) -> dict:
    return dict(re.findall(r"func\.func private @(\w+)\(([^)]*)\)", design))


# --- 1. a chain of elementwise nodes without a GEMM ----------------------------------------------

def test_elementwise_chain_renders_and_emulates(tmp_path):
    v = variants(EW_CHAIN, "mlir-aie")[0]
    files = render(v, "mlir-aie").files
    design = files["design.mlir"]
    assert "%arg2: memref<128xf32>" in design and "@y_L1L3_0" in design and "@t_" not in design
    assert set(declared(design)) == {"zero_f32_4x16", "add_f32_4x16_pair0", "add_f32_4x16_row0",
                                     "gelu_exact_f32_4x16"}
    check_against_torch(tmp_path / "ew1", v, "mlir-aie")


@pytest.mark.parametrize("index", [0, 1], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("text", EW_CHAINS, ids=["sub-silu-mul-gelu", "relu-sigmoid-rsub"])
def test_elementwise_chains_of_every_step_kind_emulate(tmp_path, text, index):
    check_against_torch(tmp_path, text, "mlir-aie", index)


def test_elementwise_chain_of_three_inputs_is_refused_at_load():
    text = EW_CHAIN.replace("  b: {shape: [N], dtype: $dtype}\n",
                            "  b: {shape: [N], dtype: $dtype}\n  s: {shape: [1], dtype: $dtype}\n")
    text = text.replace("  - {op: gelu, inputs: [t], output: y}",
                        "  - {op: mul, inputs: [t, s], output: u}\n  - {op: gelu, inputs: [u], output: y}")
    assert refused(text, "specs/t.yaml").endswith(
        "the elementwise chain 'y' (add -> mul -> gelu) reads 3 input tensors (x, b, s); its core has 2 input DMA "
        "channels (valid: an elementwise chain that reads at most two input tensors)")


# --- 2. kernels of one shape reading objects of different sizes -------------------------------

def test_two_bias_epilogues_get_one_kernel_name_per_signature(tmp_path):
    """GPT-2's MLP: both GEMMs' bias adds read at the same offset of A objects of different sizes."""
    v = variants(TWO_BIAS.format(E=768, H=3072, dtype="bfloat16"), "mlir-aie")[0]
    design = render(v, "mlir-aie").files["design.mlir"]
    decl = declared(design)
    for name, types in decl.items():
        k = kernels.parse(name)
        if "obj" in k:      # the name carries the size of the object it reads
            assert f"memref<{k['obj']}x" in types.split(", ")[0 if k["kind"] == "matmul" else 1], name
    assert re.search(r"@add_bf16_3x48_row\d+_o1536\b", design) and re.search(r"@add_bf16_3x64_row\d+_o832\b", design)
    rules.check(aieparse.parse(design))
    check_against_torch(tmp_path / "small", TWO_BIAS.format(E=384, H=768, dtype="float32"), "mlir-aie")


def test_two_bias_in_float32_at_gpt2_size_is_refused_with_the_limits_and_what_fits():
    message = refused(TWO_BIAS.format(E=768, H=3072, dtype="float32"), "specs/t.yaml")
    assert "two signatures" not in message and "{'s2mm'" not in message
    assert "no tiling fits npu2: with the smallest tiles and the most cores" in message
    assert "no mem tile has room for another link (9 input DMA channels, 1 output DMA channel, 7168 bytes): the " \
           "nearest, (0, 1), would exceed its DMA channels (a mem tile has 6 input + 6 output DMA channels" in message
    assert message.endswith("(valid: dtype bfloat16, which fits (tile_m=3 tile_n=64 tile_k=192 cores=4/16); or "
                            "smaller shapes, or a target without these limits)")


def test_kernel_names_carry_the_object_size_and_the_emulator_checks_it(tmp_path):
    name = kernels.epilogue("add", (), "float32", 3, 48, "row", 384, 480)
    assert name == "add_f32_3x48_row384_o480" and kernels.parse(name)["obj"] == 480
    assert kernels.epilogue("add", (), "float32", 3, 48, "row", 0, 48) == "add_f32_3x48_row0"   # the operand alone
    assert kernels.parse(kernels.matmul("float32", 3, 128, 48, False, 1, 480))["obj"] == 480
    assert kernels.matmul("float32", 3, 128, 48, False, 1, 384) == "matmul_f32_3x128x48"
    with pytest.raises(ValueError, match="at element 470 of a 480-element object"):
        kernels.epilogue("add", (), "float32", 3, 48, "row", 470, 480)
    v = variants(TWO_BIAS.format(E=384, H=768, dtype="float32"), "mlir-aie")[0]
    folder = build(tmp_path, v, "mlir-aie")
    assert run_and_compare(folder, v, "mlir-aie")["y"]["ok"]
    design = (folder / "design.mlir").read_text()
    assert "_o" in design
    bad = re.sub(r"_o(\d+)\b", lambda m: f"_o{int(m.group(1)) + 16}", design)      # names that lie about the size
    (folder / "design.mlir").write_text(bad)
    with pytest.raises(EmulationError, match="-element object; it is passed a memref<"):
        run_and_compare(folder, v, "mlir-aie")


# --- 3. tensor names that are keywords or the generator's own names -------------------------------

KEYWORDS = {"x": "int", "w": "float", "b": "class", "c": "acc", "y": "return"}
GEMM = """\
name: kw
params: {M: [8], N: 32, K: 16, dtype: [float32, bfloat16]}
inputs:
  x: {shape: [M, K], dtype: $dtype}
  w: {shape: [N, K], dtype: $dtype}
  b: {shape: [N], dtype: $dtype}
  c: {shape: [M, 1], dtype: $dtype}
graph:
  - {op: matmul, inputs: [x, w], output: y, transpose_b: true, epilogue: [{add: b}, relu, {mul: c}]}
outputs: [y]
targets: [mlir-aie]
"""
SWIGLU_NAMES = {"x": "auto", "wg": "template", "wu": "T", "wd": "obj", "gate": "out", "up": "x", "act": "in0",
                "h": "row", "y": "col"}
SWIGLU = """\
name: kw
params: {M: [16], E: 64, H: 128, dtype: [float32, bfloat16]}
inputs:
  x: {shape: [M, E], dtype: $dtype}
  wg: {shape: [H, E], dtype: $dtype}
  wu: {shape: [H, E], dtype: $dtype}
  wd: {shape: [E, H], dtype: $dtype}
graph:
  - {op: matmul, inputs: [x, wg], output: gate, transpose_b: true}
  - {op: matmul, inputs: [x, wu], output: up, transpose_b: true}
  - {op: silu, inputs: [gate], output: act}
  - {op: mul, inputs: [act, up], output: h}
  - {op: matmul, inputs: [h, wd], output: y, transpose_b: true}
outputs: [y]
targets: [mlir-aie]
"""
EW_NAMES = {"x": "acc", "b": "b_L3L1_0", "t": "x_L3L1_0", "y": "void"}


def renamed(text, names) -> str:
    return re.sub(r"\b(" + "|".join(map(re.escape, names)) + r")\b", lambda m: names[m.group(1)], text)


def code(design, names=None) -> list:
    """The design's lines without comments, FIFO symbols' tensor names mapped through `names`."""
    inverse = {v: k for k, v in (names or {}).items()}
    lines = [line for line in design.splitlines() if not line.lstrip().startswith("//")]
    return [re.sub(r"@(\w+)(_L\dL\d(?:_\d+)?)\b", lambda m: "@" + inverse.get(m.group(1), m.group(1)) + m.group(2),
                   line) for line in lines]


@pytest.mark.parametrize("text,names", [(GEMM, KEYWORDS), (SWIGLU, SWIGLU_NAMES), (EW_CHAIN, EW_NAMES)],
                         ids=["gemm", "swiglu", "ew-chain"])
@pytest.mark.parametrize("index", [0, 1], ids=["float32", "bfloat16"])
def test_tensor_names_never_break_the_design_or_the_kernels(tmp_path, text, names, index):
    """C/C++ keywords, `T`, and the names of the kernels' locals, the core programs' values and the
    design's FIFOs: no tensor name reaches kernels.cc, and in design.mlir a name is only ever the
    stem of a FIFO symbol (or in a comment)."""
    if text is EW_CHAIN:
        text = text.replace("dtype: float32}", "dtype: [float32, bfloat16]}")
    odd = renamed(text, names)
    plain, weird = (render(variants(t, "mlir-aie")[index], "mlir-aie").files for t in (text, odd))
    assert weird["kernels.cc"] == plain["kernels.cc"]
    assert code(weird["design.mlir"], names) == code(plain["design.mlir"])
    assert code(weird["design.mlir"]) != code(plain["design.mlir"])
    rules.check(aieparse.parse(weird["design.mlir"]))
    check_against_torch(tmp_path, odd, "mlir-aie", index)
