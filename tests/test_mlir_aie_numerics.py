"""mlir-aie arithmetic (numerics.py): the approximations the kernels use are accurate to the
bound the validation tolerance assumes; the kernel sources print exactly the emulator's
constants; the emulator runs a design's kernels with that arithmetic."""
from __future__ import annotations

import re

import pytest
import torch

from conftest import render as render_spec
from fusebuild.run import validate as V
from fusebuild.backends import get_backend
from fusebuild.backends.mlir_aie import numerics as N
from fusebuild.ir.dtypes import DTYPES
from fusebuild.spec import parse_spec

X = torch.linspace(-20, 20, 200001, dtype=torch.float32)
REF = {"sigmoid": lambda x: torch.sigmoid(x), "silu": torch.nn.functional.silu,
       "gelu_tanh": lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
       "gelu_exact": lambda x: torch.nn.functional.gelu(x)}
FN = {"sigmoid": N.sigmoid, "silu": N.silu, "gelu_tanh": N.gelu_tanh, "gelu_exact": N.gelu_exact}


@pytest.mark.parametrize("name", sorted(FN))
@pytest.mark.parametrize("q,bound", [("f32", 4 * DTYPES["float32"].eps), ("bf16", DTYPES["bfloat16"].eps)])
def test_approximations_stay_within_the_bound_the_tolerance_assumes(name, q, bound):
    """Error relative to max(|f(x)|, 1), over bf16-representable inputs for bf16. validate.tolerance
    gives bf16 outputs rtol = 4 eps: 1 eps for the approximation, 1/2 for the kernel's one rounding,
    up to 2 for the torch reference rounding at each node; the atol scales with the output."""
    x = N.rne_bf16(X) if q == "bf16" else X
    got = FN[name](x, q).double()
    want = REF[name](x.double())
    assert float(((got - want).abs() / want.abs().clamp_min(1.0)).max()) <= bound


def test_bf16_rounding_is_round_to_nearest_even():
    vals = [1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 3.0e-5, 65504.0]
    for v in vals:
        assert N.bf16(v) == float(torch.tensor(v).to(torch.bfloat16).float())
    assert N.bf16(1 + 2 ** -8) == 1.0 and N.bf16(1 + 3 * 2 ** -8) == 1 + 2 ** -6     # ties to even


def test_bf16_products_are_exact_in_fp32():
    a, b = N.rne_bf16(torch.randn(1000)), N.rne_bf16(torch.randn(1000))
    assert torch.equal(N.mul(a, b, "bf16").double(), a.double() * b.double())


def test_kernel_sources_print_the_emulator_constants():
    spec = parse_spec("name: k\nparams: {M: 4, N: 32, K: 16}\ninputs:\n  x: {shape: [M, K], dtype: bfloat16}\n"
                      "  w: {shape: [N, K], dtype: bfloat16}\ngraph:\n  - {op: matmul, inputs: [x, w], output: y, "
                      "transpose_b: true, epilogue: [{gelu: {approximate: tanh}}]}\noutputs: [y]\n"
                      "targets: [mlir-aie]\n", "k.yaml")
    source = render_spec(spec.variants[0], "mlir-aie", hints={}).files["kernels.cc"]
    printed = dict(re.findall(r"static constexpr float (\w+)\[2\] = \{ ([^ ]+), [^ ]+ \};", source))
    bf16 = dict(re.findall(r"static constexpr float (\w+)\[2\] = \{ [^ ]+, ([^ ]+) \};", source))
    assert set(printed) == set(N.constants("f32"))
    for name, value in N.constants("f32").items():
        assert float.fromhex(printed[name].rstrip("f")) == value, name
    for name, value in N.constants("bf16").items():
        assert float.fromhex(bf16[name].rstrip("f")) == value, name
    assert "aie::set_rounding(aie::rounding_mode::conv_even)" in source
    assert "gelu_tanh_v<1>" in source and "aie::mmul<4, 8, 8, bfloat16, bfloat16, accfloat>" in source


def test_emulated_bf16_epilogue_is_the_kernel_arithmetic(tmp_path):
    """The emulated design's output equals the kernels' arithmetic written out directly: fp32
    accumulation of bf16 products, fp32 bias add, silu in bf16 operand mode, one rounding."""
    v = parse_spec("name: k\nparams: {M: 8, N: 32, K: 64}\ninputs:\n  x: {shape: [M, K], dtype: bfloat16}\n"
                   "  w: {shape: [N, K], dtype: bfloat16}\n  b: {shape: [N], dtype: bfloat16}\ngraph:\n"
                   "  - {op: matmul, inputs: [x, w], output: y, transpose_b: true, epilogue: [{add: b}, silu]}\n"
                   "outputs: [y]\ntargets: [mlir-aie]\nschedule: {mlir-aie: {tile_m: 4, tile_n: 16, tile_k: 64, "
                   "cores: 2}}\n", "k.yaml").variants[0]
    aie = get_backend("mlir-aie")
    (tmp_path / "design.mlir").write_text(render_spec(v, "mlir-aie").files["design.mlir"])
    inputs = V.make_inputs(v.graph, 0)
    got = aie.run(tmp_path, v.graph, inputs)["y"].float()
    acc = inputs["x"].float() @ inputs["w"].float().T          # one K step per tile: one fp32 matmul
    want = N.rne_bf16(N.silu(acc + inputs["b"].float(), "bf16"))
    assert torch.equal(got, want)
