"""tir-cuda: rendering (golden lines), refusals, tiles, the tilelang env, not-run statuses,
cache keys, and one real cross-build (slow). No GPU is needed or used here."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO, render as render_spec
from fusebuild.plan import keys
from fusebuild.plan.artifacts import Artifact
from fusebuild.backends import get_backend
from fusebuild.backends.tir_cuda.env import TILELANG
from fusebuild.backends.tir_cuda.backend import UnsupportedGraph
from fusebuild.backends.tir_cuda.tiles import TileError
from fusebuild.envs import MANIFEST
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
    return r.files[what] if what else (r.files, r.templates)


def gemm(M=1024, N=512, K=1024, act="silu", extra=""):
    return GEMM.format(M=M, N=N, K=K, act=act, extra=extra)


def test_bias_silu_large_m_golden_lines():
    files, deps = render(gemm(), what=None)
    src = files["kernel.py"]
    assert '    t_bias: T.Tensor((512,), "bfloat16"),  # input bias' in src
    assert "    with T.Kernel(2, 8, 1, threads=256) as (bx, by, bz):" in src
    assert '        T.use_swizzle(10, order="row")' in src
    assert "        T.copy(t_bias[bx * 256], S_bias)" in src
    assert "            T.gemm(A_s, B_s, C_l, transpose_B=True, policy=T.GemmWarpPolicy.Square)" in src
    assert (f"            C_l[i, j] = ({SILU} * T.fast_rcp(T.float32(1) + T.__exp(T.float32(0) - {SILU})))"
            in src)
    assert "        T.copy(C_s, t_y[by * 128, bx * 256])" in src
    assert set(deps["templates"]) == {"kernel.py.j2", "gemm.j2", "ops.j2"}
    (launch,) = json.loads(files["plan.json"])["launches"]
    assert launch["config"]["block_N"] == 256 and launch["kind"] == "gemm"


@pytest.mark.parametrize("act,line", [
    ("relu", f"C_l[i, j] = T.max({SILU}, T.float32(0))"),
    ("gelu", f"C_l[i, j] = (T.float32(0.5) * {SILU} * (T.float32(1) + T.erf({SILU} * T.float32(0.7071067811865476))))"),
])
def test_epilogue_variants(act, line):
    assert line in render(gemm(act=act))


def test_small_m_is_swap_ab_with_split_k_and_epilogue_in_the_reduce():
    src = render(gemm(M=1))
    assert "            T.copy(t_w[bx * 64, bz * 512 + k * 128], A_s)" in src
    assert "                ws_part_y[bz, by * 16 + j, bx * 64 + i] = C_l[i, j]" in src
    assert '    ws_part_y: T.Tensor((2, 16, 512), "float32"),' in src
    assert ('t_y[ry * 1 + i, rx * 256 + j] = T.cast(((R_l[i, j] + T.cast(t_bias[rx * 256 + j], "float32")) * '
            in src)


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
    v = [v for v in load_spec(REPO / "specs" / "swiglu_prefill.yaml").variants if "tir-cuda" in v.targets][0]
    files = render_spec(v, "tir-cuda", hints={}).files
    src = files["kernel.py"]
    assert src.count("with T.Kernel(") == 3            # dual gate/up, down (split-K), its reduce
    assert "            T.gemm(A_s, B1_s, C1_l, transpose_B=True" in src
    assert "            T.gemm(A_s, B2_s, C2_l, transpose_B=True" in src
    assert src.count("T.copy(t_x[") == 1                 # x tile loaded once for both GEMMs
    assert ("            C2_l[i, j] = ((C1_l[i, j] * T.fast_rcp(T.float32(1) + T.__exp(T.float32(0) - C1_l[i, j])))"
            " * C2_l[i, j])") in src
    assert "        T.copy(C_s, ws_h[by * 64, bx * 128])" in src
    assert "T.copy(ws_h_in[by * 64, bz * 1024 + k * 64], A_s)" in src
    params = json.loads(files["plan.json"])["params"]
    assert [(p["name"], p["role"]) for p in params] == [
        ("t_x", "input"), ("t_wg", "input"), ("t_wu", "input"), ("t_wd", "input"), ("ws_h", "workspace"),
        ("ws_h_in", "alias"), ("ws_part_y", "workspace"), ("t_y", "output")]


def test_hints_override_tiles_and_bad_ones_say_why():
    src = render(gemm(extra="schedule: {tir-cuda: {block_n: 128, stages: 4}}"))
    assert "with T.Kernel(4, 8, 1, threads=256)" in src and "num_stages=4" in src
    with pytest.raises(TileError, match=r"N=512 is not a multiple of the weight tile 224"):
        render(gemm(extra="schedule: {tir-cuda: {block_n: 224}}"))


@pytest.mark.parametrize("graph,why", [
    ("  - {op: add, inputs: [x, x], output: y}", "y is elementwise work not fused into a matmul"),
    ("  - {op: matmul, inputs: [x, w], output: y}", "nn.Linear layout (transpose_b: true)"),
    ("  - {op: matmul, inputs: [x, w], output: t, transpose_b: true}\n"
     "  - {op: matmul, inputs: [x, w], output: y, transpose_b: true}", "not the SwiGLU pattern"),
])
def test_unsupported_graphs_are_refused(graph, why):
    text = ("name: u\ninputs:\n  x: {shape: [64, 64], dtype: bfloat16}\n  w: {shape: [64, 64], dtype: bfloat16}\n"
            f"graph:\n{graph}\noutputs: [y]\ntargets: [tir-cuda]\n")
    with pytest.raises(UnsupportedGraph, match="tir-cuda cannot render this graph") as info:
        render(text)
    assert why in str(info.value) and "valid:" in str(info.value)


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


@pytest.mark.e2e
@pytest.mark.slow
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
    files = render_spec(v, "tir-cuda", hints={}).files
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
