"""mlir-aie tiling search (fit.py): real model shapes fit, hints that do not fit and shapes that
cannot fit are refused when the spec loads (so `fusebuild check` reports them), with the limit
and the nearest tilings that fit; the planner's resource model agrees with the checker's."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from fusebuild.backends import get_backend
from fusebuild.backends.mlir_aie import aieparse, rules
from fusebuild.backends.mlir_aie.fit import search
from fusebuild.backends.mlir_aie.plan import PLANNING, PlanError, Tiling, plan
from fusebuild.backends.mlir_aie.structure import analyze
from fusebuild.spec import load_spec, parse_spec

from conftest import REPO, refused
from conftest import render as render_spec

LLAMA = REPO / "tests" / "data" / "specs" / "llama32_1b_mlp.yaml"


def gemm(M, N, K, hints="", dtype="bfloat16", epilogue=""):
    return (f"name: g\nparams: {{M: {M}, N: {N}, K: {K}}}\ninputs:\n  x: {{shape: [M, K], dtype: {dtype}}}\n"
            f"  w: {{shape: [N, K], dtype: {dtype}}}\n  b: {{shape: [N], dtype: {dtype}}}\n  r: {{shape: [M, N], dtype: {dtype}}}\n"
            f"graph:\n  - {{op: matmul, inputs: [x, w], output: y, transpose_b: true{epilogue}}}\n"
            f"outputs: [y]\ntargets: [mlir-aie]\n{hints}")


def test_llama_3_2_1b_mlp_fits_at_decode_and_prefill_sizes():
    variants = load_spec(LLAMA).variants
    assert {(v.params["M"], v.params["dtype"]) for v in variants} == {
        (m, d) for m in (1, 32, 128) for d in ("bfloat16", "float32")}
    for v in variants:
        start = time.perf_counter()
        _, tiling, p = search(v.graph, {})
        took = time.perf_counter() - start
        assert sum(tiling.cores) >= 20, (v.name, tiling)        # the search prefers more cores
        assert took < 0.5, (v.name, took)                       # ~5-30 ms on a quiet machine
        rules.check(aieparse.parse(render_spec(v, "mlir-aie", hints={}).files["design.mlir"]))


def test_search_prefers_more_cores_then_bigger_tiles():
    v = parse_spec(gemm(64, 256, 256), "specs/g.yaml").variants[0]
    st = analyze(v.graph)
    _, best, _ = search(v.graph, {})
    fits = []
    for m in (1, 2, 4, 8, 16, 32, 64):
        for n in (16, 32, 64, 128, 256):
            for k in (8, 16, 32, 64, 128, 256):
                for c in (1, 2, 4, 8, 16):
                    try:
                        plan(st, Tiling(m, n, k, (c,)), v.graph.tensors)
                        fits.append((c, m * n * k))
                    except PlanError:
                        pass
    assert (best.cores[0], best.m * best.n * best.k) == max(fits)


def test_hints_are_honoured_when_they_fit():
    v = parse_spec(gemm(64, 256, 256, "schedule: {mlir-aie: {tile_m: 16, cores: 4}}\n"), "specs/g.yaml").variants[0]
    _, t, _ = search(v.graph, v.schedule["mlir-aie"])
    assert (t.m, t.cores) == (16, (4,))


def test_hints_that_do_not_fit_name_the_limit_and_the_nearest_fits():
    text = gemm(128, 4096, 4096, "schedule: {mlir-aie: {tile_m: 64, tile_n: 256, tile_k: 256, cores: 8}}\n")
    assert refused(text) == (
        "specs/g.yaml:12: schedule.mlir-aie: target mlir-aie (variant M=128, N=4096, K=4096): schedule "
        "hints tile_m=64 tile_n=256 tile_k=256 cores=8 do not fit npu2: a core of 'y' (A 64x256, B 256x256, C 64x256) "
        "needs 459776 bytes of data memory (1024 stack + tiles); a compute tile has 65536 (valid: nearest tilings that "
        "fit: tile_m=64 tile_n=64 tile_k=32 cores=8; tile_m=64 tile_n=32 tile_k=64 cores=8; tile_m=64 tile_n=16 "
        "tile_k=128 cores=8)")


@pytest.mark.parametrize("hints,message", [
    ("cores: 40", "hint cores=40: npu2 has 32 compute cores for this design (valid: cores: 1..32)"),
    ("tile_n: 24", "hint tile_n=24 is not a multiple of 16 (the kernels' vector width) (valid: tile_n: a multiple "
                   "of 16)"),
    ("tile_k: 12", "hint tile_k=12 is not a multiple of 8 (the K of one aie::mmul step) (valid: tile_k: a multiple "
                   "of 8)"),
])
def test_impossible_hints_are_refused_with_the_rule(hints, message):
    assert refused(gemm(128, 256, 256, f"schedule: {{mlir-aie: {{{hints}}}}}\n")).endswith(message)


def test_shape_with_no_tile_is_refused_at_load():
    assert refused(gemm(8, 24, 64)) == (
        "specs/g.yaml:11: targets: target mlir-aie (variant M=8, N=24, K=64): no tiling fits npu2: N=24 is not "
        "a multiple of 16 (tile_n: the kernels' vector width) (the design takes no tails: every tile is whole) "
        "(valid: N a multiple of 16 (pad the operands), or another target)")


def test_shape_too_big_for_npu2_is_refused_at_load_with_the_reason():
    text = (REPO / "specs" / "swiglu_prefill.yaml").read_text()
    text = text.replace("M: [64, 256]", "M: 8").replace("E: 512", "E: 65536").replace("H: 2048", "H: 256")
    message = refused(text.replace("dtype: [float32, bfloat16, float16]", "dtype: bfloat16").replace(
        "specs/g.yaml", "x"))
    assert "no tiling fits npu2: with the smallest tiles and the most cores (tile_m=1 tile_n=16 tile_k=8 " \
           "cores=8/8/16): a core of 'y' (A 1x128, B 4096x128, C 1x4096) needs" in message


def test_full_shape_epilogue_operand_is_refused_in_a_fused_design():
    message = refused(gemm(8, 32, 16, epilogue=", epilogue: [{add: r}]"))
    assert message.endswith("epilogue operand 'r' has the output's full shape [8, 32]: in a fused design it would be "
                            "a third input stream into each core (a compute tile has 2 input DMA channels) (valid: a "
                            "row ([N]), column ([M, 1]) or scalar operand, or mode: separate)")


def test_check_command_reports_the_fit_error(tmp_path):
    spec = tmp_path / "g.yaml"
    spec.write_text(gemm(8, 24, 64))
    proc = subprocess.run([sys.executable, "-m", "fusebuild", "check", str(spec)], capture_output=True, text=True,
                          cwd=REPO)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "no tiling fits npu2" in proc.stderr and f"{spec}:11: targets:" in proc.stderr


@pytest.mark.parametrize("spec", ["gemm_bias_silu", "swiglu_prefill"])
def test_planner_memory_model_agrees_with_the_checker(spec):
    """The planner's per-core bytes (its own numbers) equal what the checker measures on the text."""
    for v in load_spec(REPO / "specs" / f"{spec}.yaml").variants:
        if "mlir-aie" not in v.targets:
            continue
        _, _, p = search(v.graph, v.schedule.get("mlir-aie", {}))
        summary = rules.check(aieparse.parse(render_spec(v, "mlir-aie", hints={}).files["design.mlir"]))
        planned = max(u.bytes for t, u in p.usage.items() if t[1] >= 2) + PLANNING["stack"]
        assert planned == summary["l1_bytes_max"], v.name


@pytest.mark.slow
@pytest.mark.parametrize("name", [f"M{m}_E2048_H8192_{d}" for m in (1, 32, 128) for d in ("bfloat16", "float32")])
def test_llama_3_2_1b_mlp_validates_in_emulation(tmp_path, name):
    """The full design (24 cores) runs in the emulator against torch; 2-40 s per variant here."""
    from fusebuild.run import validate as V
    v = next(v for v in load_spec(LLAMA).variants if v.name == name)
    aie = get_backend("mlir-aie")
    (tmp_path / "design.mlir").write_text(render_spec(v, "mlir-aie", hints={}).files["design.mlir"])
    inputs = V.make_inputs(v.graph, v.seed)
    exp = V.expected(v.graph, inputs)
    start = time.perf_counter()
    got = aie.run(tmp_path, v.graph, inputs)["y"]
    print(f"{name}: emulated in {time.perf_counter() - start:.1f} s")
    assert V.compare(got, exp.values["y"], exp.bounds["y"])["ok"]
