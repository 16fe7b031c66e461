"""tir-cuda builds of the shapes real models have (tests/data/cuda_shapes: decode M = 1..64, odd M/N/K,
a GEMM chain, the bias + residual case, the Llama-3.2-1B MLP at M = 1 and 32, N = 4097, hinted split-K) and of a
dynamic-M artifact, through TileLang lowering and nvcc. No GPU here: every artifact must end
`built-not-validated`, never `pass`. Plus the pure parts: the dynamic dispatcher's text and the
loader's M binding."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, dynamic_rows
from conftest import render as render_spec
from fusebuild.backends import get_backend
from fusebuild.backends.tir_cuda import lower
from fusebuild.spec import load_spec

CUDA = get_backend("tir-cuda")
SHAPES = REPO / "tests" / "data" / "cuda_shapes"
needs_env = pytest.mark.skipif(not CUDA.toolchain().available,
                               reason="tilelang env or nvcc missing: python -m fusebuild env create tilelang")

PART = """\
#define ERROR_BUF_SIZE 1024
static char error_buf[ERROR_BUF_SIZE];

extern "C" TL_EXPORT const char* get_last_error() {
    return error_buf;
}

extern "C" TL_EXPORT int init() {
    error_buf[0] = '\\0';
    return 0;
}

extern "C" TL_EXPORT int call(bfloat16_t* __restrict__ t_x, float* __restrict__ ws, int M, cudaStream_t stream=cudaStreamDefault) {
    snprintf(error_buf, ERROR_BUF_SIZE, "x");
    return 0;
}
"""


def test_dynamic_parts_become_static_functions_behind_one_dispatching_call():
    part = lower.as_part(PART, "m1_16")
    assert "static char m1_16_error_buf[ERROR_BUF_SIZE];\n#define error_buf m1_16_error_buf" in part
    assert "static const char* m1_16_get_last_error() {" in part and "static int m1_16_init() {" in part
    assert "static int m1_16_call(bfloat16_t* __restrict__ t_x, float* __restrict__ ws, int M, cudaStream_t stream) {" in part
    assert part.rstrip().endswith("#undef error_buf") and 'extern "C"' not in part
    sig = lower.SIGNATURE.search(PART).group(1)
    parts = [{"name": "m1_16", "lo": 1, "hi": 16, "funcs": ["m1_16"]},
             {"name": "m17_300", "lo": 17, "hi": 300, "funcs": ["m17_300_s1", "m17_300_s2"]}]
    text = lower.dispatcher(parts, sig, dynamic=True)
    assert ('extern "C" TL_EXPORT int call(bfloat16_t* __restrict__ t_x, float* __restrict__ ws, int M, '
            'cudaStream_t stream) {') in text
    assert ("  if (M >= 17 && M <= 300) { if ((r = m17_300_s1_call(t_x, ws, M, stream)) != 0) { fb_error = "
            "m17_300_s1_get_last_error(); return r; } if ((r = m17_300_s2_call(t_x, ws, M, stream)) != 0) { "
            "fb_error = m17_300_s2_get_last_error(); return r; } return 0; }") in text
    assert "is outside this artifact's range [1, 300]" in text
    assert "  if (m17_300_s2_init() != 0) { fb_error = m17_300_s2_get_last_error(); return -1; }" in text
    static = lower.dispatcher([{"name": "main", "lo": 5, "hi": 5, "funcs": ["main_s1", "main_s2"]}], sig, dynamic=False)
    assert "M >=" not in static and "  if ((r = main_s1_call(t_x, ws, M, stream)) != 0) {" in static


def test_loader_takes_m_from_the_tensors_and_checks_its_range():
    torch = pytest.importorskip("torch")
    from fusebuild.backends.tir_cuda.loader import Artifact
    art = Artifact.__new__(Artifact)
    art.name, art.range, art.device = "a", [1, 300], torch.device("cpu")
    art.params = [{"name": "t_x", "role": "input", "shape": ["M", 8], "dtype": "bfloat16"},
                  {"name": "ws", "role": "workspace", "shape": [2, "M", 4], "dtype": "float32"},
                  {"name": "t_y", "role": "output", "shape": ["M", 4], "dtype": "bfloat16"}]
    art.tensor_params = [art.params[0], art.params[2]]
    art.workspaces, art._ws_m, art._retired = {}, 0, []
    x, y = torch.zeros(7, 8), torch.zeros(7, 4)
    assert art._bind_m([x, y]) == 7 and list(art.workspaces["ws"].shape) == [2, 7, 4]
    first = art.workspaces["ws"]
    assert art._bind_m([torch.zeros(3, 8), torch.zeros(3, 4)]) == 3 and art.workspaces["ws"] is first   # reused
    with pytest.raises(ValueError, match="disagree on M"):
        art._bind_m([x, torch.zeros(5, 4)])
    with pytest.raises(ValueError, match=r"M=301 is outside this artifact's range \[1, 300\]"):
        art._bind_m([torch.zeros(301, 8), torch.zeros(301, 4)])


def test_a_bound_launcher_keeps_its_artifact_and_workspaces_alive():
    """`Artifact(p).bind(...)` keeps only the launcher: the workspaces must not be freed under it."""
    import gc
    import weakref
    from fusebuild.backends.tir_cuda.loader import Artifact

    class Lib:
        def call(self, *args):
            return 0

        def get_last_error(self):
            return b""
    art = Artifact.__new__(Artifact)
    art.name, art.range, art.lib, art._stream = "a", None, Lib(), lambda: 0
    art.params = art.tensor_params = []
    art.workspaces, art._ws_m, art._retired = {"ws": object()}, 0, []
    alive = weakref.ref(art)
    launch = art.bind()
    del art
    gc.collect()
    assert alive() is not None and launch.artifact is alive() and "ws" in launch.artifact.workspaces
    launch()


def _kernel_cu(root, spec, variant) -> str:
    return (root / "out" / spec / variant / "tir-cuda" / "kernel.cu").read_text()


@pytest.mark.slow
@pytest.mark.e2e
@needs_env
def test_odd_decode_and_model_shapes_build_and_end_built_not_validated(project):
    for path in sorted(SHAPES.glob("*.yaml")):
        shutil.copy(path, project.root / "specs" / path.name)
    r = project.doit("-n", "2", "build", check=0)
    reports = {p.parent.parent.parent.name + "/" + p.parent.parent.name: json.loads(p.read_text())
               for p in (project.root / "out").glob("*/*/tir-cuda/validation.json")}
    expected = sum(len(load_spec(p).variants) for p in SHAPES.glob("*.yaml"))
    assert len(reports) == expected, r.text[-3000:]
    assert {k: v["status"] for k, v in reports.items() if v["status"] != "built-not-validated"} == {}
    assert all(v["reason"] == "built, not validated: no CUDA device" for v in reports.values())
    root = project.root
    # odd K: x and w without TMA (rows are not 16-byte aligned) and no cp.async; the output with TMA
    odd = _kernel_cu(root, "odd_small", "M77_N1000_K333_bfloat16")
    assert "t_x_desc" not in odd and "t_w_desc" not in odd and "cp_async" not in odd and "t_y_desc" in odd
    # N = 4097: y rows are not 16-byte aligned (no TMA store); w is read through TMA (zero-filled tail)
    wide = _kernel_cu(root, "odd_wide", "M300_N4097_K768")
    assert "t_y_desc" not in wide and "t_w_desc" in wide and "t_x_desc" in wide
    # decode: swap-AB wgmma with the rows of x on the N side (16), two CTAs per SM
    dec = _kernel_cu(root, "decode_gemm", "M1_N4097_K768_bfloat16")
    assert "tl::DataType::kFloat32, 64, 16, 16" in dec and "__launch_bounds__(256, 2)" in dec
    mlp = json.loads((root / "out/swiglu_l1b/M1_E2048_H8192/tir-cuda/kernel.json").read_text())
    assert [k["name"] for k in mlp["kernels"]] == ["main_s1_kernel", "main_s2_kernel", "main_s2_kernel_1"]
    assert [k["grid"] for k in mlp["kernels"]][:2] == [[128, 1, 1], [32, 1, 4]]
    assert not any("spill" in line and not line.startswith("0 bytes") for line in mlp["ptxas"])


@pytest.mark.slow
@needs_env
def test_an_in_kernel_split_k_reduce_lowers_to_a_fence_and_an_arrival_counter(tmp_path):
    v = load_spec(SHAPES / "decode_gemm.yaml").variants[0]          # M = 1 x 4097 x 768: split-K
    files, _ = render_spec(v, "tir-cuda", hints={"inline_reduce": 1}).files, None
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    CUDA.compile(tmp_path, tmp_path)
    cu = (tmp_path / "kernel.cu").read_text()
    assert len(json.loads((tmp_path / "lower.json").read_text())["kernels"]) == 1      # no reduce kernel
    assert "__threadfence();" in cu and "AtomicAddRet(" in cu


@pytest.mark.slow
@needs_env
def test_a_dynamic_m_artifact_builds_with_one_call_that_takes_m(tmp_path):
    v = load_spec(SHAPES / "odd_wide.yaml").variants[0]          # 300 x 4097 x 768, bias + SiLU
    files, _ = render_spec(dynamic_rows(v.graph, 1, 300), "tir-cuda").files, None
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    CUDA.compile(tmp_path, tmp_path)
    CUDA.assemble(tmp_path, tmp_path)
    m = json.loads((tmp_path / "kernel.json").read_text())
    assert m["dynamic"] == {"M": [1, 300]}
    ranges = [(p["lo"], p["hi"]) for p in m["parts"]]
    assert ranges[:3] == [(1, 16), (17, 32), (33, 64)] and ranges[-1][1] == 300
    assert all(b[0] == a[1] + 1 for a, b in zip(ranges, ranges[1:]))          # contiguous, no gap
    assert m["call_signature"].endswith("bfloat16_t* __restrict__ t_y, int M, cudaStream_t stream=cudaStreamDefault")
    assert {k["name"] for k in m["kernels"]} >= {"m1_16_kernel", f"m{ranges[-1][0]}_300_kernel"}
    assert [p["shape"] for p in m["params"] if p["name"] == "t_x"] == [["M", 768]]
    cu = (tmp_path / "kernel.cu").read_text()
    assert "  if (M >= 1 && M <= 16) { if ((r = m1_16_call(" in cu
    assert "if (((((int)blockIdx.y) * 16) + 16) <= M) {" in cu      # whole-tile CTAs: the unguarded store
    nm = subprocess.run(["nm", "-D", "--defined-only", str(tmp_path / "kernel.so")], capture_output=True, text=True)
    assert {"call", "init", "get_last_error"} <= set(nm.stdout.split())
    assert "m1_16_call" not in nm.stdout                                  # parts are internal
    assert (CUDA.device().available, CUDA.device().reason) == (False, "built, not validated: no CUDA device")
