"""tir-cuda: rendering (golden lines), refusals, tiles, the tilelang env, not-run statuses,
cache keys, and one real cross-build (slow). No GPU is needed or used here."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from conftest import REPO, dynamic_rows, swiglu_spec
from conftest import render as render_spec
from fusebuild.plan import keys
from fusebuild.plan.artifacts import Artifact
from fusebuild.backends import get_backend
from fusebuild.backends.tir_cuda.env import TILELANG
from fusebuild.backends.tir_cuda.backend import UnsupportedGraph
from fusebuild.backends.tir_cuda.tiles import TileError
from fusebuild.envs import MANIFEST
from fusebuild.errors import SpecError
from fusebuild.spec import load_spec, parse_spec

CUDA = get_backend("tir-cuda")

GEMM = """\
name: g
params: {{M: [{M}], N: {N}, K: {K}, dtype: bfloat16}}
inputs:
  x: {{shape: [M, K], dtype: $dtype}}
  w: {{shape: [N, K], dtype: $dtype}}
  bias: {{shape: [N], dtype: $dtype}}
graph:
  - {{op: matmul, inputs: [x, w], output: y, transpose_b: true, epilogue: [{{add: bias}}, {act}]}}
outputs: [y]
targets: [tir-cuda]
{extra}"""

SILU = "(C_l[i, j] + T.cast(S_bias[j], \"float32\"))"


def variant(text, i=0):
    return parse_spec(text, "specs/t.yaml").variants[i]


def render(text, i=0, what="kernel.py"):
    v = variant(text, i)
    r = render_spec(v, "tir-cuda")
    files, deps = r.files, r.templates
    return files[what] if what else (files, deps)


def gemm(M=1024, N=512, K=1024, act="silu", extra=""):
    return GEMM.format(M=M, N=N, K=K, act=act, extra=extra)


def test_bias_silu_large_m_golden_lines():
    """M >= 1024: the hand-written kernel (tiles.py `ws`): a TMA producer warpgroup, mbarrier rings,
    the CTAs' pair walk, the epilogue staged in its own tile."""
    files, deps = render(gemm(M=4096, N=1024), what=None)
    src = files["kernel.py"]
    assert '    t_bias: T.Tensor((1024,), "bfloat16"),  # input bias' in src
    assert "from tilelang.layout import make_swizzled_layout" in src
    assert "    with T.Kernel(128, threads=384) as pid:" in src and "T.use_swizzle" not in src
    assert "        width = T.min(8, 4 - panel * 8)" in src         # 4 W tiles: a panel narrower than 8
    assert "        T.copy(t_bias[bx * 256], S_bias)" in src
    assert "        empty = T.alloc_barrier([8] * 3)" in src
    assert ("                T.tma_copy(t_w[bx * 256:bx * 256 + 256, k * 64:k * 64 + 64], B_s[k % 3, :, :], "
            "barrier=full[k % 3])") in src
    assert ("                T.wgmma_gemm(A_s[k % 3, :, :], B_s[k % 3, :, :], C_l, transpose_B=True, "
            "policy=T.GemmWarpPolicy.Square)") in src
    assert (f"                C_l[i, j] = ({SILU} * T.fast_rcp(T.float32(1) + T.__exp(T.float32(0) - {SILU})))"
            in src)
    assert "            T.copy(C_s, t_y[by * 128, bx * 256])" in src
    assert set(deps["templates"]) == {"kernel.py.j2", "gemm.j2", "ops.j2"}
    (launch,) = json.loads(files["plan.json"])["launches"]
    assert launch["config"]["block_N"] == 256 and launch["kind"] == "gemm" and launch["config"]["ws"] == 1


def test_ws_0_keeps_the_pipelined_kernel():
    src = render(gemm(M=4096, N=1024, extra="schedule: {tir-cuda: {ws: 0}}"))
    assert "    with T.Kernel(4, 32, 1, threads=256) as (bx, by, bz):" in src
    assert '        T.use_swizzle(10, order="row")' in src and "make_swizzled_layout" not in src
    assert "            T.gemm(A_s, B_s, C_l, transpose_B=True, policy=T.GemmWarpPolicy.Square)" in src


@pytest.mark.parametrize("act,line", [
    ("relu", f"C_l[i, j] = T.max({SILU}, T.float32(0))"),
    ("gelu", f"C_l[i, j] = (T.float32(0.5) * {SILU} * (T.float32(1) + T.erf({SILU} * T.float32(0.7071067811865476))))"),
])
def test_epilogue_variants(act, line):
    assert line in render(gemm(M=4096, act=act))


def test_decode_is_swap_ab_with_split_k_guards_and_the_epilogue_in_the_reduce():
    src = render(gemm(M=1, N=4096, K=4096))
    assert "    with T.Kernel(64, 1, 2, threads=128) as (bx, by, bz):" in src
    assert "        T.annotate_min_blocks_per_sm(2)\n        T.annotate_producer_reg_dealloc(24)\n" in src
    assert "            T.copy(t_w[bx * 64, bz * 2048 + k * 64], W_s)" in src
    assert "            T.copy(t_x[by * 16, bz * 2048 + k * 64], X_s)" in src
    assert "            T.gemm(W_s, X_s, C_l, transpose_B=True" in src
    assert "            if by * 16 + j < 1:\n                ws_part_y[bz, by * 16 + j, bx * 64 + i] = C_l[i, j]" in src
    assert '    ws_part_y: T.Tensor((2, 1, 4096), "float32"),' in src
    assert "    with T.Kernel(16, 1, threads=128) as (rx, ry):" in src and "ws_tick" not in src
    assert ('t_y[ry * 1 + i, rx * 256 + j] = T.cast(((R_l[i, j] + T.cast(t_bias[rx * 256 + j], "float32")) * '
            in src)


def test_inline_reduce_lets_the_last_split_reduce_and_store_without_a_second_kernel():
    src = render(gemm(M=1, N=4096, K=4096, extra="schedule: {tir-cuda: {inline_reduce: 1}}\n"))
    assert '    ws_tick_y: T.Tensor((1, 64), "int32"),' in src
    assert src.count("with T.Kernel(") == 1
    # each split publishes its partials and counts itself in; the one that finds the other in reduces
    assert ("        T.call_extern(\"handle\", \"__threadfence\")\n        T.sync_threads()\n"
            "        for t in T.Parallel(1):\n            arrived[t] = T.atomic_add(ws_tick_y[by, bx], 1, return_prev=True)\n"
            "        T.sync_threads()\n        if arrived[0] == 1:\n") in src
    assert ("                    if s != bz and by * 16 + j < 1:\n"
            "                        C_l[i, j] = C_l[i, j] + ws_part_y[s, by * 16 + j, bx * 64 + i]\n") in src
    assert ('                    t_y[by * 16 + j, bx * 64 + i] = T.cast(((C_l[i, j] + T.cast(t_bias[bx * 64 + i], '
            '"float32")) * ') in src
    assert "            for t in T.Parallel(1):\n                ws_tick_y[by, bx] = 0\n" in src
    tick = [p for p in json.loads(render(gemm(M=1, N=4096, K=4096, extra="schedule: {tir-cuda: {inline_reduce: 1}}\n"),
                                         what="plan.json"))["params"] if p["name"] == "ws_tick_y"]
    assert tick[0]["zeroed"] is True and tick[0]["dtype"] == "int32"      # the loader zeroes it once


def test_tails_are_ceil_divided_and_guarded():
    """77 x 1000 x 333: no dimension divides a tile; odd K turns TileLang's async copies off."""
    files, _ = render(gemm(M=77, N=1000, K=333), what=None)
    src, plan = files["kernel.py"], json.loads(files["plan.json"])
    assert "    with T.Kernel(16, 2, 1, threads=128) as (bx, by, bz):" in src     # 1000/64, 77/64 rounded up
    assert "        for k in T.Pipelined(6, num_stages=4):" in src                 # 333/64 rounded up
    assert plan["pass_configs"] == {"tl.enable_async_copy": False, "tirx.use_async_copy": False}
    assert "pass_configs" not in json.loads(render(gemm(M=77, N=1000, K=334), what="plan.json"))
    dec = render(gemm(M=7, N=1000, K=333))
    assert "            if by * 16 + j < 7 and bx * 64 + i < 1000:" in dec


def test_persistent_hint_loops_one_cta_per_sm_over_the_tiles():
    src = render(gemm(M=4096, N=14336, K=4096, extra="schedule: {tir-cuda: {persistent: 1, swizzle: 6}}\n"))
    assert ("    with T.Kernel(132, threads=256) as (pid):\n"
            "        for by, bx in T.Persistent([32, 56], 132, pid, group_size=6):\n"
            "            S_bias = T.alloc_shared((256,), \"bfloat16\")\n") in src
    assert "            T.copy(C_s, t_y[by * 128, bx * 256])" in src and "T.use_swizzle" not in src
    swiglu = render(swiglu_spec([4096], 4096, 14336, schedule="schedule: {tir-cuda: {dual_persistent: 1}}\n"))
    assert "    with T.Kernel(132, threads=256) as (pid):\n        for by, bx in T.Persistent([32, 112], 132, pid, group_size=10):" in swiglu


def test_epilogue_is_rendered_from_the_expression_tree():
    """Any elementwise chain works, e.g. a residual (M, N) operand: no epilogue name list."""
    text = """\
name: r
inputs:
  x: {shape: [128, 256], dtype: float16}
  w: {shape: [512, 256], dtype: float16}
  r: {shape: [128, 512], dtype: float16}
graph:
  - {op: matmul, inputs: [x, w], output: y, transpose_b: true, epilogue: [{sub: r}, sigmoid]}
outputs: [y]
targets: [tir-cuda]
schedule: {tir-cuda: {block_m: 128, block_n: 128, split_k: 1, threads: 256}}
"""
    src = render(text)
    assert ('C_l[i, j] = T.fast_rcp(T.float32(1) + T.__exp(T.float32(0) - '
            '(C_l[i, j] - T.cast(t_r[by * 128 + i, bx * 128 + j], "float32"))))') in src
    assert "with T.Kernel(4, 1, 1, threads=256)" in src


def test_swiglu_renders_one_dual_accumulator_kernel_and_the_down_gemm():
    v = [v for v in load_spec(REPO / "specs" / "swiglu_prefill.yaml").variants
         if "tir-cuda" in v.targets and v.params["M"] == 256][0]
    files, _ = render_spec(v, "tir-cuda", hints={}).files, None
    src = files["kernel.py"]
    assert src.count("with T.Kernel(") == 3            # dual gate/up, down (split-K), its reduce
    assert "            T.gemm(A_s, B1_s, C1_l, transpose_B=True" in src
    assert "            T.gemm(A_s, B2_s, C2_l, transpose_B=True" in src
    assert src.count("T.copy(t_x[") == 1                 # x tile loaded once for both GEMMs
    assert ("            C2_l[i, j] = ((C1_l[i, j] * T.fast_rcp(T.float32(1) + T.__exp(T.float32(0) - C1_l[i, j])))"
            " * C2_l[i, j])") in src
    assert "        T.copy(C_s, ws_h[by * 128, bx * 64])" in src
    assert "T.copy(ws_h_in[by * 64, bz * 512 + k * 64], A_s)" in src
    params = json.loads(files["plan.json"])["params"]
    assert [(p["name"], p["role"]) for p in params] == [
        ("t_x", "input"), ("t_wg", "input"), ("t_wu", "input"), ("t_wd", "input"), ("ws_h", "workspace"),
        ("ws_h_in", "alias"), ("ws_part_y", "workspace"), ("t_y", "output")]


def test_swiglu_decode_is_a_swap_ab_dual_kernel():
    text = swiglu_spec([1], 2048, 8192)
    src = render(text)
    assert "            T.copy(t_wg[bx * 64, k * 64], W1_s)\n            T.copy(t_wu[bx * 64, k * 64], W2_s)\n" in src
    assert "            T.gemm(W1_s, X_s, C1_l, transpose_B=True" in src and src.count("T.copy(t_x[") == 1
    assert "                ws_h[by * 16 + j, bx * 64 + i] = T.cast(((C1_l[i, j] * T.fast_rcp(" in src


def test_rendered_source_holds_no_spec_path_or_free_text():
    v = variant(gemm(extra="description: 'drop table; {{ evil }}'\n"))
    files, _ = render_spec(dataclasses.replace(v, spec="secret_name", name="SECRET_VARIANT"), "tir-cuda", hints={}).files, None
    for text in files.values():
        assert "secret_name" not in text and "SECRET_VARIANT" not in text and "evil" not in text




def test_dynamic_m_renders_one_prim_func_per_bucket_with_a_symbolic_m():
    v = variant(gemm(M=300, N=1024, K=1024, act="relu"))
    files, _ = render_spec(dynamic_rows(v.graph, 1, 4096), "tir-cuda").files, None
    src, plan = files["kernel.py"], json.loads(files["plan.json"])
    assert '\nM = T.dynamic("M")\n' in src
    assert '    t_x: T.Tensor((M, 1024), "bfloat16"),  # input x' in src
    assert '    t_y: T.Tensor((M, 1024), "bfloat16"),  # output y' in src
    assert plan["dynamic"] == {"M": [1, 4096]}
    parts = [(p["name"], p["lo"], p["hi"]) for p in plan["parts"]]
    assert parts[:3] == [("m1_16", 1, 16), ("m17_32", 17, 32), ("m33_64", 33, 64)] and parts[-1][2] == 4096
    assert [f"def {name}(" in src for name, _, _ in parts] == [True] * len(parts)
    assert "    with T.Kernel(16, T.ceildiv(M, 16), " in src            # 1024 / 64 W rows, M / 16 x rows
    # a CTA of whole rows stores with no row guard (as the static kernel of M = 16 does); the last one guards
    assert ("        if (by + 1) * 16 <= M:\n            for i, j in T.Parallel(64, 16):\n"
            "                ws_part_y[bz, by * 16 + j, bx * 64 + i] = C_l[i, j]\n        else:\n"
            "            for i, j in T.Parallel(64, 16):\n                if by * 16 + j < M:\n") in src
    # at every M the dynamic artifact runs the static artifact's tiles
    for m in (1, 17, 64, 65, 300, 1024, 1025, 4096):
        static = json.loads(render(gemm(M=m, N=1024, K=1024, act="relu"), what="plan.json"))["launches"]
        part = next(p for p in plan["parts"] if p["lo"] <= m <= p["hi"])
        assert [r["config"] for r in plan["launches"] if r["part"] == part["name"]] == [r["config"] for r in static]


def test_dynamic_m_marks_workspaces_and_row_operands():
    text = """\
name: r
params: {M: [64], N: 512, K: 8192}
inputs:
  x: {shape: [M, K], dtype: bfloat16}
  w: {shape: [N, K], dtype: bfloat16}
  r: {shape: [M, N], dtype: bfloat16}
  b: {shape: [N], dtype: bfloat16}
graph:
  - {op: matmul, inputs: [x, w], output: y, transpose_b: true, epilogue: [{add: r}, {add: b}]}
outputs: [y]
targets: [tir-cuda]
"""
    files, _ = render_spec(dynamic_rows(variant(text).graph, 1, 2048), "tir-cuda").files, None
    shapes = {p["name"]: p["shape"] for p in json.loads(files["plan.json"])["params"]}
    # direct-mode split-K partials: the same T.copy in both branches; TileLang drops its row guard in the first
    assert ("        if (by + 1) * 128 <= M:\n            T.copy(C_l, ws_part_y[bz, by * 128, bx * 128])\n"
            "        else:\n            T.copy(C_l, ws_part_y[bz, by * 128, bx * 128])\n") in files["kernel.py"]
    assert shapes == {"t_x": ["M", 8192], "t_w": [512, 8192], "t_r": ["M", 512], "t_b": [512],
                      "ws_part_y": [shapes["ws_part_y"][0], "M", 512], "t_y": ["M", 512]}
    g = dynamic_rows(variant(text).graph, 1, 2048)
    with pytest.raises(UnsupportedGraph, match="tir-cuda takes only M at run time"):
        render_spec(dataclasses.replace(g, ranges=g.ranges + (("N", 1, 2),)), "tir-cuda")


def test_hints_override_tiles_and_bad_ones_say_why():
    src = render(gemm(M=4096, extra="schedule: {tir-cuda: {block_n: 128, stages: 4}}"))
    assert "tiles direct_128x128x64_s4_t256_FullRow_bs_ws" in src and "with T.Kernel(128, threads=384)" in src
    src = render(gemm(M=4096, extra="schedule: {tir-cuda: {block_n: 128, stages: 4, split_k: 2}}"))
    assert "with T.Kernel(4, 32, 2, threads=256)" in src and "num_stages=4" in src   # split-K: T.Pipelined
    with pytest.raises(SpecError, match=r"block_n=200: the wgmma N side is 16..256 in steps of 16"):
        variant(gemm(extra="schedule: {tir-cuda: {block_n: 200}}"))
    with pytest.raises(TileError, match=r"block_n=200: the wgmma N side"):   # render checks too (specs made elsewhere)
        render_spec(variant(gemm()), "tir-cuda", hints={"block_n": 200})


@pytest.mark.parametrize("graph,why", [
    ("  - {op: add, inputs: [x, x], output: y}", "y is elementwise work not fused into a matmul"),
    ("  - {op: matmul, inputs: [x, w], output: t, transpose_b: true}\n"
     "  - {op: matmul, inputs: [x, w], output: y, transpose_b: true}", "y does not multiply the previous result t"),
    ("  - {op: matmul, inputs: [x, w], output: t, transpose_b: true}\n"
     "  - {op: matmul, inputs: [t, w], output: y, transpose_b: true}", "t is a graph output and the A of the next"),
    ("  - {op: matmul, inputs: [x, w], output: t, transpose_b: true}\n"
     "  - {op: matmul, inputs: [t, w], output: y, transpose_b: true, epilogue: [{add: t}]}",
     "t is read by more than the next matmul"),
])
def test_unsupported_graphs_are_refused(graph, why):
    outputs = "[t, y]" if "graph output" in why else "[y]"
    text = ("name: u\ninputs:\n  x: {shape: [64, 64], dtype: bfloat16}\n  w: {shape: [64, 64], dtype: bfloat16}\n"
            f"graph:\n{graph}\noutputs: {outputs}\ntargets: [tir-cuda]\n")
    with pytest.raises(SpecError, match="tir-cuda cannot render this graph") as info:
        variant(text)                       # refused when the spec loads (`fusebuild check` says so)
    assert why in str(info.value) and "valid:" in str(info.value)


MLP = """\
name: mlp
params: {{M: {m}, E: 768, H: 3072}}
inputs:
  x: {{shape: [M, E], dtype: bfloat16}}
  w1: {{shape: [H, E], dtype: bfloat16}}
  b1: {{shape: [H], dtype: bfloat16}}
  w2: {{shape: [E, H], dtype: bfloat16}}
  b2: {{shape: [E], dtype: bfloat16}}
graph:
  - {{op: matmul, inputs: [x, w1], output: h, transpose_b: true, epilogue: [{{add: b1}}, gelu]}}
  - {{op: matmul, inputs: [h, w2], output: y, transpose_b: true, epilogue: [{{add: b2}}, {{add: x}}]}}
outputs: [y]
targets: [tir-cuda]
"""


@pytest.mark.parametrize("m", ["197", "{dynamic: [3, 1000]}"])
def test_a_gelu_mlp_is_a_chain_of_two_launches_through_a_workspace(m):
    """GPT-2 / BERT / ViT: fc1 + bias + GELU, then fc2 + bias + the residual x, one artifact."""
    files = render_spec(variant(MLP.format(m=m)), "tir-cuda").files
    plan = json.loads(files["plan.json"])
    assert [(x["kind"], x["group"]) for x in plan["launches"] if x["part"] == plan["parts"][0]["name"]] == [
        ("gemm", "h"), ("down", "y")]
    roles = {p["name"]: (p["role"], p.get("alias_of")) for p in plan["params"]}
    assert roles["ws_h"] == ("workspace", None) and roles["ws_h_in"] == ("alias", "ws_h")
    assert list(roles)[-1] == "t_y" and "t_h" not in roles
    assert "T.copy(ws_h_in[" in files["kernel.py"] or "ws_h_in[" in files["kernel.py"]


@pytest.mark.parametrize("m,n,mode", [(256, 512, "direct"), (4, 512, "swap_ab"), (4, 333, "swap_ab")])
def test_a_weight_stored_k_by_n_is_loaded_in_k_steps_and_not_transposed(m, n, mode):
    """transpose_b: false (GPT-2's Conv1D keeps W as [in, out]): [K step, N rows] tiles; in swap-AB
    W is the A operand, read transposed. An odd N leaves W's rows unaligned: no async copies."""
    files = render_spec(variant(gemm(M=m, N=n, K=256).replace("transpose_b: true", "transpose_b: false")
                                .replace("w: {shape: [N, K]", "w: {shape: [K, N]")), "tir-cuda").files
    src, plan = files["kernel.py"], json.loads(files["plan.json"])
    assert plan["launches"][0]["config"]["mode"] == mode
    if mode == "direct":
        bn = plan["launches"][0]["config"]["block_N"]
        assert f"B_s = T.alloc_shared((64, {bn})" in src and f"T.copy(t_w[k * 64, bx * {bn}], B_s)" in src
        assert "T.gemm(A_s, B_s, C_l, transpose_B=False" in src
    else:
        assert "W_s = T.alloc_shared((64, 64)" in src and "t_w[" in src and ", bx * 64], W_s)" in src
        assert "T.gemm(W_s, X_s, C_l, transpose_A=True, transpose_B=True" in src
    assert ("pass_configs" in plan) == bool(n % 2)


def test_down_hints_tile_the_later_gemms_of_a_chain_apart_and_plain_hints_set_them_all():
    def configs(schedule):
        text = MLP.format(m=1024) + f"schedule: {{tir-cuda: {schedule}}}\n"
        plan = json.loads(render_spec(variant(text), "tir-cuda").files["plan.json"])
        return [(x["config"]["block_N"], x["config"]["split_k"]) for x in plan["launches"]]
    default_fc1, default_fc2 = configs("{}")
    assert configs("{down_block_n: 128, down_split_k: 2}") == [default_fc1, (128, 2)]
    assert configs("{block_n: 128, split_k: 1}") == [(128, 1), (128, 1)]
    assert configs("{block_n: 128, split_k: 1, down_block_n: 64}") == [(128, 1), (64, 1)]
    with pytest.raises(SpecError, match=r"down_block_n=200: the wgmma N side"):
        variant(MLP.format(m=1024) + "schedule: {tir-cuda: {down_block_n: 200}}\n")


def test_float32_is_not_a_tir_cuda_dtype():
    with pytest.raises(Exception, match="target tir-cuda does not support dtype float32"):
        parse_spec(gemm().replace("dtype: bfloat16}", "dtype: float32}"), "specs/t.yaml")


def test_shipped_specs_have_cuda_variants_and_cpu_targets_keep_float32():
    for name in ("gemm", "gemm_bias_silu", "gemm_bias_relu", "gemm_bias_gelu", "swiglu_prefill"):
        vs = load_spec(REPO / "specs" / f"{name}.yaml").variants
        assert {v.params["dtype"] for v in vs if "tir-cuda" in v.targets} == {"bfloat16", "float16"}, name
        assert {v.params["dtype"] for v in vs if "tir-cpu" in v.targets} == {"float32"}, name
        for v in vs:
            if "tir-cuda" in v.targets:
                render_spec(v, "tir-cuda")   # every one renders


def test_random_shapes_all_render():
    rnd = __import__("random").Random(3)
    for _ in range(40):
        m, n, k = rnd.randint(1, 3000), rnd.randint(1, 9000), rnd.randint(1, 9000)
        render(gemm(M=m, N=n, K=k, act=rnd.choice(["relu", "silu", "gelu"])))
    for m, e, h in ((1, 2048, 8192), (32, 2048, 8192), (3, 1000, 333), (70, 1000, 333), (4099, 100, 7)):
        render(swiglu_spec([m], e, h))


# --- toolchain env, statuses, keys --------------------------------------------------------

def fake_env(root, versions):
    path = root / "tilelang"
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "python").write_text("")
    (path / MANIFEST).write_text(json.dumps({"name": "tilelang", "steps": [list(s) for s in TILELANG.steps],
                                             "versions": versions}))


def test_missing_env_is_unavailable_with_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSEBUILD_TOOLCHAINS", str(tmp_path))
    tc = CUDA.toolchain()
    assert not tc.available and "`python -m fusebuild env create tilelang`" in tc.reason


def test_cache_keys_carry_tilelang_tvm_ffi_and_nvcc_versions(tmp_path, monkeypatch):
    if not CUDA.toolchain().versions.get("nvcc") and not __import__("shutil").which("nvcc"):
        pytest.skip("no nvcc")
    v = variant(gemm())
    a = Artifact(v, "tir-cuda", tmp_path / "out")
    a.dir.mkdir(parents=True)
    for f in CUDA.source_files:
        (a.dir / f).write_text("x")
    monkeypatch.setenv("FUSEBUILD_TOOLCHAINS", str(tmp_path / "one"))
    fake_env(tmp_path / "one", {"tilelang": "0.1.15", "apache-tvm-ffi": "0.1.12"})
    k1 = keys.compile(a, CUDA, CUDA.toolchain()).cache_key()
    assert {"tilelang", "apache-tvm-ffi", "nvcc"} <= set(k1["versions"])
    monkeypatch.setenv("FUSEBUILD_TOOLCHAINS", str(tmp_path / "two"))
    fake_env(tmp_path / "two", {"tilelang": "0.1.16", "apache-tvm-ffi": "0.1.12"})
    assert keys.compile(a, CUDA, CUDA.toolchain()).cache_key() != k1


def test_env_is_declared_and_listed():
    out = subprocess.run([sys.executable, "-m", "fusebuild", "env", "list"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("tilelang: ")


def test_gpu_validate_path_imports_no_toolchain():
    code = ("import sys, fusebuild.cli, fusebuild.run.gpu_validate, fusebuild.backends.tir_cuda.backend, "
            "fusebuild.backends.tir_cuda.loader\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('doit', 'tvm', 'tilelang', 'iree')]\n"
            "assert not bad, bad")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.e2e
def test_missing_env_reports_not_run_and_the_build_succeeds(project, tmp_path):
    project.spec("g", gemm(M=128))
    r = project.doit("build", check=0, env={"FUSEBUILD_TOOLCHAINS": str(tmp_path / "none")})
    report = json.loads(next((project.root / "out").glob("g/*/tir-cuda/validation.json")).read_text())
    assert report["status"] == "not-run" and "python -m fusebuild env create tilelang" in report["reason"]
    assert not r.ran_stage("compile")


needs_env = pytest.mark.skipif(not CUDA.toolchain().available,
                               reason="tilelang env or nvcc missing: python -m fusebuild env create tilelang")


@pytest.mark.slow
@pytest.mark.e2e
@needs_env
def test_build_without_gpu_is_built_not_validated_never_pass(project):
    project.spec("g", gemm(M=128, N=256, K=512))
    r = project.doit("build", check=0)
    folder = next((project.root / "out").glob("g/*/tir-cuda"))
    report = json.loads((folder / "validation.json").read_text())
    assert report["status"] == "built-not-validated" and report["reason"] == "built, not validated: no CUDA device"
    assert report["artifacts"] == ["kernel.so", "kernel.json"]
    assert {"tilelang", "apache-tvm-ffi", "nvcc"} <= set(report["toolchain"])
    assert "built, not validated: no CUDA device" in r.text


@pytest.mark.slow
@needs_env
def test_compile_and_assemble_a_small_kernel(tmp_path):
    v = variant(gemm(M=128, N=256, K=512))
    files, _ = render_spec(v, "tir-cuda", hints={"split_k": 2}).files, None
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    CUDA.compile(tmp_path, tmp_path)
    assert "cudaLaunchKernelEx" in (tmp_path / "kernel.cu").read_text()
    CUDA.assemble(tmp_path, tmp_path)
    m = json.loads((tmp_path / "kernel.json").read_text())
    assert (tmp_path / "kernel.so").stat().st_size > 100_000
    assert [k["name"] for k in m["kernels"]] == ["main_kernel", "main_kernel_1"]     # GEMM (split-K 2) + reduce
    assert [p["name"] for p in m["params"]] == ["t_x", "t_w", "t_bias", "ws_part_y", "t_y"]
    assert "sm_90a" in m["nvcc"] and "-lcuda" not in m["nvcc"]
    nm = subprocess.run(["nm", "-D", "--defined-only", str(tmp_path / "kernel.so")], capture_output=True, text=True)
    assert {"call", "init", "get_last_error"} <= set(nm.stdout.split())


@pytest.mark.slow
def test_env_create_into_a_fresh_folder(tmp_path):
    env = dict(__import__("os").environ, FUSEBUILD_TOOLCHAINS=str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "fusebuild", "env", "create", "tilelang"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    m = json.loads((tmp_path / "tilelang" / MANIFEST).read_text())
    assert m["versions"]["tilelang"] == "0.1.15" and m["versions"]["env-torch"].startswith("2.13.0")


def test_ieee_math_is_the_default_and_fast_math_is_a_hint():
    from fusebuild.backends.tir_cuda.backend import nvcc_flags
    assert "--use_fast_math" not in nvcc_flags({})
    assert "--use_fast_math" in nvcc_flags({"fast_math": 1})
