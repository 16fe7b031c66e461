"""tir-cuda tiles and hint checks (fusebuild/backends/tir_cuda/tiles.py, program.check): pure and fast.

Every shape gets a config that passes the checks; hints that cannot run are refused with the
hint's name and what would apply, from a pure function and at spec load (`fusebuild check`).
"""
from __future__ import annotations

import dataclasses
import random
import subprocess
import sys

import pytest
from conftest import REPO, swiglu_spec

from fusebuild.backends import TARGETS
from fusebuild.backends.tir_cuda.tiles import (
    KINDS,
    PREFIX,
    NUM_SMS,
    _direct,
    buckets,
    candidates,
    check_config,
    check_hints,
    choose,
    config_hints,
    default,
    hint_names,
    m_bucket,
)
from fusebuild.errors import SpecError
from fusebuild.spec import parse_spec


def shapes(n=300, seed=7):
    rnd = random.Random(seed)
    fixed = [(1, 1, 1), (1, 4097, 768), (77, 1000, 333), (300, 4097, 768), (1024, 896, 4864), (64, 64, 64),
             (65, 8192, 2048), (4096, 14336, 4096), (2, 3, 5), (5000, 17, 30011), (1, 2048, 8192), (33, 8192, 2048)]
    rand = [(rnd.choice([1, 2, 7, 16, 31, 64, 65, 127, 1023, 4099]) if rnd.random() < 0.5 else rnd.randint(1, 9000),
             rnd.randint(1, 20000), rnd.randint(1, 20000)) for _ in range(n)]
    return fixed + rand


@pytest.mark.parametrize("kind", KINDS)
def test_every_shape_gets_a_config_that_passes_the_checks(kind):
    for m, n, k in shapes():
        cfg = default(kind, m, n, k)
        assert check_config(cfg, kind, m, n, k) == [], (kind, m, n, k, cfg.short())
        assert cfg == choose(kind, m, n, k, {}, "x")


def test_decode_is_swap_ab_and_prefill_direct():
    assert default("gemm", 1, 4096, 4096).mode == "swap_ab"
    assert default("gemm", 64, 4096, 4096).mode == "swap_ab"
    assert default("gemm", 65, 14336, 4096).mode == "direct"
    assert default("dual", 32, 8192, 2048).mode == "swap_ab"
    # few W tiles (N = 2048: 32 CTAs of 64 rows) -> split-K fills the 132 SMs; many -> none
    assert default("gemm", 1, 2048, 8192).split_k == 4
    assert default("gemm", 1, 14336, 4096).split_k == 1
    assert default("dual", 1, 8192, 2048).split_k == 1


def test_configs_depend_on_m_only_through_its_bucket():
    assert [m_bucket(m) for m in (1, 16, 17, 32, 33, 64, 65, 128, 129, 512, 513, 600, 1000, 1024, 1025,
                                  1100, 2048, 2049)] == [
        16, 16, 32, 32, 64, 64, 128, 128, 256, 512, 640, 640, 1024, 1024, 1280, 1280, 2048, 4096]
    assert buckets(1, 300) == [(1, 16, 16), (17, 32, 32), (33, 64, 64), (65, 128, 128), (129, 256, 256),
                               (257, 300, 512)]
    assert [rep for _, _, rep in buckets(500, 2100)] == [512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048, 4096]
    for lo, hi, rep in buckets(1, 5000):
        for m in {lo, hi, (lo + hi) // 2}:
            assert default("gemm", m, 4096, 4096) == default("gemm", rep, 4096, 4096)


def test_between_powers_of_two_the_w_tile_width_fills_the_waves():
    """600 rows of x are 5 x tiles: 16 W tiles of 256 rows give 80 CTAs (52 of 132 SMs idle), 26 of
    160 give 130 (measured on an H200: 38 vs 50 us at 600 x 4096 x 4096); the power-of-two
    buckets keep their measured widths."""
    got = {(m, n): default("gemm", m, n, 4096) for m in (600, 768, 896, 1024, 1280, 2048) for n in (4096, 14336)}
    assert {k: (c.block_N, c.num_stages, c.ws) for k, c in got.items()} == {
        (600, 4096): (160, 4, 1), (600, 14336): (192, 4, 1), (768, 4096): (192, 4, 1), (768, 14336): (224, 3, 1),
        (896, 4096): (256, 3, 1), (896, 14336): (256, 3, 1), (1024, 4096): (256, 3, 1), (1024, 14336): (224, 3, 1),
        (1280, 4096): (160, 4, 1), (1280, 14336): (224, 3, 1), (2048, 4096): (256, 3, 1), (2048, 14336): (256, 3, 1)}
    for (m, n), cfg in got.items():         # the width never leaves most SMs idle in a one-wave launch
        gx, gy, _ = cfg.grid(m, n)
        assert gx * gy > 0.75 * NUM_SMS or -(-gx * gy // NUM_SMS) > 1, (m, n, cfg.short())
    assert default("dual", 600, 14336, 4096).block_N == 112 and default("dual", 1024, 14336, 4096).block_N == 128


def test_the_benchmarks_tuned_prefill_defaults_are_kept():
    """The H100-swept configs at the benchmark's M >= 128 shapes (docs/gpu.md) stay as they were; at
    M >= 1024 they run as the hand-written kernel (`ws`, its own CTA walk instead of the swizzle)."""
    got = {(m, n, k): default("gemm", m, n, k).short() for m in (128, 1024, 4096)
           for n, k in ((14336, 4096), (4096, 14336), (4096, 4096))}
    swept = {(m, n, k): _direct("gemm", m, n, k).short() for m in (1024, 4096)
             for n, k in ((14336, 4096), (4096, 14336), (4096, 4096))}
    assert got[(128, 14336, 4096)] == "direct_128x112x64_s4_t256_FullRow_bs"
    # M = 128 with N <= 64 x 132 SMs: swap-AB, measured faster on the H200 (test_m128_swap_ab_where_measured)
    assert got[(128, 4096, 14336)] == got[(128, 4096, 4096)] == "swap_ab_64x128x64_s7_t128_Square_sk2_mb1"
    assert swept[(1024, 14336, 4096)] == "direct_128x224x64_s3_t256_Square_sw10_bs"
    assert set(swept.values()) - {swept[(1024, 14336, 4096)]} == {"direct_128x256x64_s3_t256_Square_sw10_bs"}
    for mnk, form in swept.items():
        assert got[mnk] == form.replace("_sw10", "") + "_ws"


def test_the_hand_written_kernel_where_tma_loads_one_pass():
    """ws by default: direct mode, M > 512, one K pass, K and N multiples of 8
    (bench/results/gpu_ws_default_ab_h200.log: 37 M >= 1024 rows against the T.Pipelined kernels;
    gpu_ws_dual_ab_h200.log: SwiGLU's gate/up kernel)."""
    assert default("gemm", 1024, 4096, 4096).ws and default("down", 4096, 2048, 8192).ws
    assert default("dual", 1024, 14336, 4096).ws                     # SwiGLU's gate/up kernel too
    assert not default("gemm", 512, 4096, 4096).ws                   # M bucket 512: T.Pipelined
    assert not default("gemm", 1024, 4097, 768).ws                   # N = 4097: not a multiple of 8
    assert not default("gemm", 1024, 1000, 333).ws                   # K = 333: no TMA
    tuned = {"block_m": 128, "block_n": 128, "split_k": 2, "stages": 4, "threads": 256, "direct": 1}
    assert choose("gemm", 1024, 896, 4864, tuned, "x").short() == "direct_128x128x64_s4_t256_Square_sk2"
    assert choose("gemm", 1024, 4096, 4096, {"swizzle": 4}, "x").short() == "direct_128x256x64_s3_t256_Square_sw4_bs"
    assert choose("gemm", 1024, 4096, 4096, {"ws": 0}, "x") == _direct("gemm", 1024, 4096, 4096)


@pytest.mark.parametrize("kind,mnk,hints,message", [
    ("gemm", (1024, 4096, 4096), {"ws": 1, "split_k": 2}, "ws=1 is the hand-written kernel of one direct-mode GEMM "
     "tile per CTA and one K pass; this launch is gemm direct_128x256x64_s3_t256_Square_sk2_ws"),
    ("gemm", (1024, 4096, 4100), {"ws": 1}, "ws=1 loads x and w by TMA only, which needs 16-byte row strides: "
     "K=4100 and N=4096 must be multiples of 8"),
    ("gemm", (1024, 4096, 4096), {"ws": 1, "swizzle": 4}, "swizzle does not apply to the hand-written kernel (ws=1)"),
    ("gemm", (16, 4096, 4096), {"ws": 1}, "ws=1 is the hand-written kernel of one direct-mode GEMM tile per CTA"),
    ("dual", (1024, 14336, 4096), {"dual_ws": 1, "dual_stages": 5}, "5 stages of direct_128x128x64_s5_t256_FullRow_ws "
     "need 273 KiB of shared memory"),
])
def test_hand_written_kernel_hints_that_cannot_run(kind, mnk, hints, message):
    problems = check_hints(kind, *mnk, hints)
    assert problems and problems[0].message.startswith(message), problems


@pytest.mark.parametrize("gx,gy", [(64, 8), (56, 32), (4, 32), (12, 9), (8, 5), (1, 1), (3, 1), (9, 2), (17, 7)])
def test_the_pair_walk_visits_every_tile_once(gx, gy):
    """launch.pair_walk's lines, evaluated as Python, map pid 0..gx*gy-1 onto every (bx, by) once;
    in a full panel two x tiles run at a time over the panel's W tiles."""
    from fusebuild.backends.tir_cuda.launch import PANEL, pair_walk

    class T:
        min = min

        @staticmethod
        def if_then_else(c, a, b):
            return a if c else b

        @staticmethod
        def alloc_var(dtype, init):     # a register holding `init`
            assert dtype == "int32"
            return init
    seen = []
    for pid in range(gx * gy):
        env = {"pid": pid, "T": T}
        for line in pair_walk(gx, gy):
            name, expr = line.split(" = ", 1)
            env[name] = eval(expr, {}, env)
        seen.append((env["bx"], env["by"]))
    assert sorted(seen) == [(x, y) for x in range(gx) for y in range(gy)]
    if gx >= PANEL and gy >= 2:
        assert seen[:4] == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_the_pair_walk_keeps_a_symbolic_ms_tile_in_registers():
    """With a symbolic M, bx and by are int32 registers computed once (as expressions TileLang
    inlines their run-time divisions into every TMA coordinate of the K loop); a static M keeps
    the expressions (faster there, measured)."""
    from fusebuild.backends.tir_cuda.launch import pair_walk
    static, dynamic = pair_walk(12, 9), pair_walk(12, "T.ceildiv(M, 128)")
    assert [ln.split(" = ")[0] for ln in static] == [ln.split(" = ")[0] for ln in dynamic]
    assert not any("alloc_var" in ln for ln in static)
    assert [ln for ln in dynamic if "alloc_var" in ln] == [ln for ln in dynamic if ln.startswith(("bx =", "by ="))]
    assert len([ln for ln in dynamic if "alloc_var" in ln]) == 2


def test_between_powers_of_two_a_width_that_fills_half_the_sms_is_kept():
    """600 x 2048 x 8192: 80 CTAs of 128 x 128 (hand-written) ran 46 us on an H200, the split-K
    128 x 112 the fill model preferred 51 us: between powers of two the fill model steps in only
    below half the SMs."""
    cfg = default("gemm", 600, 2048, 8192)
    assert (cfg.block_N, cfg.split_k, cfg.ws) == (128, 1, 1)
    few = default("gemm", 600, 896, 4864)          # 128 x 128: 35 CTAs, so the fill model steps in
    gx, gy, gz = few.grid(600, 896)
    assert gx * gy * gz >= 70, few.short()


def test_few_ctas_take_smaller_tiles():
    """1024x896x4864 with 128x256 tiles is 32 CTAs on 132 SMs (0.86x eager on an H200)."""
    cfg = default("gemm", 1024, 896, 4864)
    gx, gy, gz = cfg.grid(1024, 896)
    assert gx * gy * gz >= 100, cfg.short()


@pytest.mark.parametrize("m,n,k,was,now", [
    (128, 8192, 2048, "direct_128x112x64_s4_t256_FullRow_bs", "direct_128x64x64_s4_t256_FullRow_bs"),
    (1024, 4097, 768, "direct_128x256x64_s3_t256_Square_sw10_bs", "direct_128x128x64_s4_t256_FullRow_bs"),
])
def test_a_last_wave_leaving_a_quarter_of_the_sms_idle_takes_the_models_tiles(m, n, k, was, now):
    """74 and 136 CTAs on 132 SMs: the model's tiles, measured 9% and 27% faster on an H200
    (bench/results/gpu_fill_experiment_h200.log); 128 CTAs (97%) keep theirs. (M = 128 at
    8192 x 2048 now defaults to swap-AB; its direct tiles, what `direct: 1` gets, keep the rule.)"""
    cfg = _direct("gemm", m_bucket(m), n, k)
    assert cfg.short() == now and now != was
    assert _direct("gemm", 1024, 4096, 4096).short() == "direct_128x256x64_s3_t256_Square_sw10_bs"


def test_m128_swap_ab_where_measured():
    """GEMM + epilogue at M = 65..128 reads W once (swap-AB, one CTA per SM) where its CTAs fit one
    wave and K is long: measured 1.07-1.21x faster than the direct tiles at four bench shapes,
    1.27x slower at 14336 x 4096 (bench/results/gpu_m128_experiment_h200.log)."""
    for (n, k), split in {(8192, 2048): "", (2048, 8192): "_sk4", (4096, 4096): "_sk2", (4096, 14336): "_sk2"}.items():
        swap = f"swap_ab_64x128x64_s7_t128_Square{split}_mb1"     # split-K as the measured configs had it
        assert default("gemm", 128, n, k).short() == swap and default("gemm", 65, n, k).short() == swap
    assert default("gemm", 128, 14336, 4096).mode == "direct"          # 224 CTAs: two waves of one
    assert default("gemm", 128, 1000, 4096).mode == "direct"           # few CTAs, not measured
    assert default("gemm", 128, 4096, 1024).mode == "direct"           # short K, not measured
    assert default("gemm", 129, 4096, 4096).mode == "direct"
    assert default("dual", 128, 8192, 2048).mode == default("down", 128, 2048, 8192).mode == "direct"
    hinted = choose("gemm", 128, 4096, 4096, {"direct": 1}, "t")
    assert hinted.short() == _direct("gemm", 128, 4096, 4096).short() and hinted.mode == "direct"


@pytest.mark.parametrize("kind", KINDS)
def test_candidates_are_valid_and_reproducible_from_their_hints(kind):
    """Every candidate's hints select exactly it, at decode, M = 128 (swap-AB or direct), the
    hand-written M >= 1024 and tails (a persistent candidate of a two-CTA default once did not)."""
    for m in (1, 16, 100, 128, 300, 1024, 1100, 4096):
        for n, k in ((8192, 2048), (2048, 8192), (14336, 4096), (1000, 768), (896, 4864), (4097, 768)):
            cands = candidates(kind, m, n, k)
            assert len(cands) > 2 and cands[0] == default(kind, m, n, k)
            for c in cands:
                assert choose(kind, m, n, k, config_hints(c, PREFIX[kind]), "x") == c, (m, n, k, c.short())


def test_prefill_candidates_include_persistent_kernels_of_the_same_tiles():
    cands = candidates("gemm", 4096, 14336, 4096)
    tiled = {dataclasses.replace(c, persistent=0) for c in cands if c.persistent}
    assert tiled and tiled <= set(cands)                  # each persistent one has its one-CTA-per-tile twin
    assert all(c.split_k == 1 and c.mode == "direct" for c in cands if c.persistent)
    assert not any(c.persistent for c in candidates("gemm", 16, 14336, 4096))       # decode: swap-AB


def test_split_k_candidates_include_the_in_kernel_reduce():
    cands = candidates("gemm", 16, 4096, 4096)
    inline = [c for c in cands if c.inline_reduce]
    assert inline and all(c.split_k > 1 for c in inline)
    assert {dataclasses.replace(c, inline_reduce=0) for c in inline} <= set(cands)
    assert not default("gemm", 16, 4096, 4096).inline_reduce          # measured slower on an H200


def test_hint_names_are_the_targets_table():
    assert set(hint_names()) == set(TARGETS["tir-cuda"].hints.names)


@pytest.mark.parametrize("kind,mnk,hints,message,valid", [
    ("dual", (1, 8192, 2048), {"dual_block_m": 1},
     "dual_block_m=1: rows on the tensor-core M side come in 64-row wgmma tiles, split evenly over 1 warpgroup(s) "
     "of dual_threads=128", "64, 128, 192, 256"),
    ("gemm", (77, 1000, 333), {"split_k": 8}, "split_k=8 > the 6 K tile(s) of block_k=64 (K=333)", "split_k <= 6"),
    ("gemm", (1024, 4096, 4096), {"threads": 256, "block_m": 64}, "block_m=64: rows on the tensor-core M side come "
     "in 64-row wgmma tiles, split evenly over 2 warpgroup(s) of threads=256", "128, 256"),
    ("gemm", (1024, 4096, 4096), {"block_n": 24}, "block_n=24: the wgmma N side is 16..256 in steps of 16",
     "16, 32, 48, ..., 256"),
    ("gemm", (1024, 4096, 4096), {"block_k": 48}, "block_k=48", "32, 64, 128, 256"),
    ("gemm", (1024, 4096, 64), {"stages": 3}, "stages=3: a split runs 1 K iteration(s)", "1..1"),
    ("gemm", (1024, 4096, 4096), {"stages": 8}, "8 stages of direct_128x256x64_s8_t256_Square_sw10_bs need 385 KiB "
     "of shared memory, 1 CTA(s) per SM have 227 KiB", "stages <= 4, or smaller tiles"),
    ("dual", (4096, 8192, 2048), {"dual_split_k": 2}, "split_k does not apply to the dual gate/up kernel", "leave it out"),
    ("gemm", (16, 4096, 4096), {"swap_ab": 1, "direct": 1}, "swap_ab and direct both set", "one of them"),
    ("gemm", (16, 4096, 4096), {"persistent": 1}, "persistent=1 runs one CTA per SM over the direct-mode tiles of "
     "one K pass; this launch is swap_ab_64x16x64_s8_t128_Square_sk2_mb2_p",
     "leave persistent out, or direct mode with split_k 1 and min_blocks <= 1"),
])
def test_hints_that_cannot_run_are_refused_with_what_would(kind, mnk, hints, message, valid):
    problems = check_hints(kind, *mnk, hints)
    assert [(p.message, p.valid) for p in problems][:1] == [(message, valid)]
    with pytest.raises(Exception, match="cannot run"):
        choose(kind, *mnk, hints, "x")


def test_hints_that_can_run_apply_whatever_the_shape():
    """No divisibility rule: a 224-wide W tile on N = 512, 128-row tiles at M = 1 (tails are predicated)."""
    assert check_hints("gemm", 1024, 512, 1024, {"block_n": 224}) == []
    assert check_hints("gemm", 1, 4097, 333, {"direct": 1, "block_m": 128, "threads": 256}) == []
    cfg = choose("gemm", 100, 640, 1000, {"swap_ab": 1, "block_n": 64, "split_k": 3}, "x")
    assert (cfg.mode, cfg.block_N, cfg.split_k, cfg.grid(100, 640)) == ("swap_ab", 64, 3, (10, 2, 3))


def mlp(hints: str) -> str:
    return swiglu_spec([1, 32], 2048, 8192, name="mlp", schedule=f"schedule:\n  tir-cuda: {{{hints}}}\n")




def test_bad_hints_are_refused_when_the_spec_loads_with_file_line_and_field():
    with pytest.raises(SpecError) as info:
        parse_spec(mlp("dual_block_m: 1"), "specs/mlp.yaml")
    assert str(info.value) == (
        "specs/mlp.yaml:20: schedule.tir-cuda.dual_block_m: target tir-cuda (variant M=1, E=2048, "
        "H=8192): the dual gate/up kernel of act, h (1x8192x2048): dual_block_m=1: rows on the tensor-core "
        "M side come in 64-row wgmma tiles, split evenly over 1 warpgroup(s) of dual_threads=128 "
        "(valid: 64, 128, 192, 256)")
    with pytest.raises(SpecError, match=r"specs/mlp.yaml:20: schedule.tir-cuda.split_k: target tir-cuda \(variant M=1, E=2048, H=8192\): matmul y \(1x2048x8192\): "
                                        r"split_k=200 > the 128 K tile\(s\)"):
        parse_spec(mlp("split_k: 200"), "specs/mlp.yaml")
    assert parse_spec(mlp("split_k: 2, dual_stages: 2"), "specs/mlp.yaml").variants


def test_a_dynamic_m_checks_its_hints_in_every_m_bucket():
    """A dynamic M renders one kernel per bucket: a hint that cannot run the decode bucket is refused
    at load (not at render), naming the bucket; the same hint on a prefill-only range loads."""
    spec = swiglu_spec([1], 2048, 8192, name="mlp", schedule="schedule:\n  tir-cuda: {persistent: 1}\n")
    with pytest.raises(SpecError, match=r"schedule.tir-cuda.persistent: .*matmul y \(16x2048x8192, the M bucket "
                                        r"of 16\): persistent=1 runs one CTA per SM"):
        parse_spec(spec.replace("M: [1]", "M: {dynamic: [1, 4096]}"), "specs/mlp.yaml")
    ok = spec.replace("M: [1]", "M: {dynamic: [128, 4096]}").replace("{persistent: 1}",
                                                                      "{persistent: 1, direct: 1, split_k: 1}")
    assert parse_spec(ok, "specs/mlp.yaml").variants


def test_fusebuild_check_reports_a_bad_hint_without_a_traceback(tmp_path):
    path = tmp_path / "mlp.yaml"
    path.write_text(mlp("dual_block_m: 1"))
    out = subprocess.run([sys.executable, "-m", "fusebuild", "check", str(path)], cwd=REPO, capture_output=True,
                         text=True)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"{path}:20: schedule.tir-cuda.dual_block_m: " in out.stderr and "(valid: 64, 128, 192, 256)" in out.stderr


def test_checks_import_no_toolchain():
    code = ("import sys, fusebuild.backends.tir_cuda.tiles, fusebuild.backends.tir_cuda.program\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tvm', 'tilelang', 'torch', 'jinja2')]\n"
            "assert not bad, bad")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
