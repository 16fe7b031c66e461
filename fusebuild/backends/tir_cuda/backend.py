"""tir-cuda backend: TileLang kernels for Hopper, cross-built here into a host-loadable .so.

Files in the build folder:
  kernel.py     rendered TileLang: one @T.prim_func `main` (static M), or one per M range
                (`m1_16`, `m17_32`, ...) of a dynamic-M artifact; each holds one or more launches
  plan.json     kernel parameters (graph tensor / workspace / alias; "M" in a dynamic shape),
                the parts (M ranges) and each launch's tiles
  kernel.cu     CUDA device code + host wrapper (compile: lower.py in the tilelang env); for a
                dynamic artifact the parts' wrappers + a `call` that dispatches by M
  lower.json    what lowering found: parameters, launches (grid, block, smem), TMA descriptors
  kernel.so     nvcc -arch sm_90a, cudart static, no libcuda (assemble)
  kernel.json   manifest the loader reads (loader.py): parameters, entry points, nvcc, ptxas

What renders: program.py (one GEMM + epilogue or SwiGLU, then a chain of GEMMs of the result); tiles:
tiles.py (any M, N, K >= 1; swap-AB decode kernels for M <= 64); launch contexts: launch.py;
the epilogue text comes from the group's expression tree (graph.fold) and ops.j2.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ...fsutil import read_json
from ...ir.graph import broadcast_index, fold
from ..base import Backend as Base
from ..base import Device, Rendered, Toolchain
from ..templating import make_env, used_templates
from ..text import graph_lines, shape_tuple
from . import launch
from .env import TILELANG
from .program import UnsupportedGraph, launches, m_dims, mnk, params, recognize  # noqa: F401 (re-exported)
from .tiles import buckets, choose, m_bucket

LOWER = Path(__file__).resolve().parent / "lower.py"
ENV_COMMAND = "python -m fusebuild env create tilelang"
NO_DEVICE = "built, not validated: no CUDA device"
GPU_FIX = "fusebuild gpu-validate (on a machine with a Hopper GPU)"
TOOL_TIMEOUT = 900           # seconds per TileLang lowering or nvcc run: a runaway fails its task, named
NVCC_FLAGS = ["-std=c++20", "-O3", "-w", "-Xcudafe", "--diag_suppress=177", "--shared",
              "-gencode", "arch=compute_90a,code=sm_90a", "--compiler-options", "-fPIC",
              "-Xptxas", "--verbose", "-cudart", "static"]
# IEEE math by default. Schedule hint `fast_math: 1` adds --use_fast_math (the epilogue's
# expf/erff/division become approximations, far below bf16/fp16 rounding; the artifact is
# still validated). Measured on an H100 (docs/gpu.md): no consistent gain over our already
# fast __expf/rcp SiLU, so it stays opt-in.
FAST_MATH = ["--use_fast_math"]


def nvcc_flags(hints: dict) -> list:
    return NVCC_FLAGS + (FAST_MATH if hints.get("fast_math") else [])


@functools.lru_cache(maxsize=None)
def find_nvcc() -> str | None:
    return os.environ.get("NVCC") or shutil.which("nvcc") or (
        "/usr/local/cuda/bin/nvcc" if Path("/usr/local/cuda/bin/nvcc").exists() else None)


@functools.lru_cache(maxsize=None)
def nvcc_version(nvcc: str) -> str:
    out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, timeout=60).stdout
    m = re.search(r"release [\d.]+, (V[\d.]+)", out)
    return m.group(1) if m else out.strip().splitlines()[-1] if out.strip() else "?"


class Backend(Base):
    source_files = ("kernel.py", "plan.json")
    compiled_files = ("kernel.cu", "lower.json")
    artifact_name = "kernel.so"
    artifact_files = ("kernel.so", "kernel.json")
    assemble_inputs = ("kernel.cu", "lower.json", "plan.json")   # plan.json: the hints pick nvcc flags
    template_folder = "tilelang"

    def toolchain(self) -> Toolchain:
        if not TILELANG.ready():
            return Toolchain.missing(f"no tilelang env: run `{ENV_COMMAND}`")
        nvcc = find_nvcc()
        if not nvcc:
            return Toolchain.missing("nvcc not found (put CUDA's bin on PATH or set NVCC)")
        return Toolchain(True, {**TILELANG.versions(), "nvcc": nvcc_version(nvcc), "arch": "sm_90a"})

    def device(self) -> Device:
        try:
            import torch
        except ImportError:
            return Device(False, NO_DEVICE + " (torch is not installed)")
        if not torch.cuda.is_available():
            return Device(False, NO_DEVICE, GPU_FIX)
        cap = torch.cuda.get_device_capability()
        if cap[0] != 9:
            return Device(False, f"built, not validated: sm_90a code needs a Hopper GPU, found sm_{cap[0]}{cap[1]}",
                          GPU_FIX)
        return Device(True)

    def schedule(self, build_dir) -> dict:
        plan = read_json(Path(build_dir) / "plan.json") or {}
        return {"launches": [{"group": x["group"], "kind": x["kind"], "config": x["config"],
                              **({"part": x["part"]} if "part" in x else {})} for x in plan.get("launches", [])]}

    # --- render (pure text) -----------------------------------------------------------
    def render(self, job) -> Rendered:
        """kernel.py + plan.json. Only names and numbers reach the text.

        A dynamic graph (job.graph.dynamic == {"M": (lo, hi)}; its tensors hold M = hi): M
        becomes TileLang's symbolic M (one artifact for every M in [lo, hi]). One prim_func
        per M bucket (tiles.buckets, neighbours with equal configs merged); the .so's `call`
        dispatches by M.
        """
        graph, hints = job.graph, job.hints
        # the one dynamic size tir-cuda takes is the rows of x (whatever the spec calls it): "M" here
        ranges = list(graph.dynamic.values())
        dynamic = {"M": ranges[0]} if len(ranges) == 1 else (graph.dynamic or None)
        env = make_env(self.template_folder)
        opmacros = env.get_template("ops.j2").module
        program = recognize(graph)
        base = params(graph, program)
        pname = {p["tensor"]: p["name"] for p in base if p["role"] in ("input", "output", "workspace")}
        reads = {p["alias_of_tensor"]: p["name"] for p in base if p["role"] == "alias"}

        def call(op, args, attrs):
            return str(getattr(opmacros, op)(*args, dt="float32", **attrs))

        def epi(expr, acc, row, col, smem=None, inline=None):
            if not _has_epilogue(expr, inline):
                return None

            def load(name):
                if inline and name in inline:
                    return inline[name]
                if smem and name in smem:
                    return f'T.cast({smem[name]}[j], "float32")'
                idx = broadcast_index(graph.tensors[name].shape, [row, col])
                return f'T.cast({pname[name]}[{", ".join(idx)}], "float32")'
            return fold(expr, lambda: acc, load, call)

        m = mnk(graph, program[0])[0]
        ranges = _ranges(graph, program, hints, m, dynamic)
        parts, spaces = [], {}
        for name, lo, hi, rep, configs in ranges:
            mtext = "M" if dynamic else m
            ctxs, records = [], []
            for i, (step, cfg) in enumerate(zip(program, configs), 1):
                if step[0] == "dual":
                    ctx, record = launch.dual(graph, step[1], step[2], cfg, mtext, pname, epi, pname[step[2].output])
                else:
                    ctx, record, ws = launch.gemm(graph, step[1], cfg, mtext, pname, epi, step[0],
                                                  reads.get(step[1].matmul.inputs[0]))
                    if ws:      # one workspace for all parts: the most splits, the widest counters
                        sk, was = spaces.get(ws["name"], (0, {}))
                        spaces[ws["name"]] = max(ws["split_k"], sk), dict(
                            ws, tick=ws.get("tick") or was.get("tick"),
                            tiles_n=max(ws.get("tiles_n", 0), was.get("tiles_n", 0)))
                ctxs.append(dict(ctx, step=i))
                records.append(dict(record, part=name))
            # One prim_func per program step: TileLang 0.1.15 mis-sizes the shared memory of a second
            # pipelined kernel in one prim_func when it cannot use TMA (odd K: 4x, past the limit).
            funcs = ([{"name": name, "launches": ctxs}] if len(ctxs) == 1 else
                     [{"name": f"{name}_s{i}", "launches": [c]} for i, c in enumerate(ctxs, 1)])
            parts.append({"name": name, "lo": lo, "hi": hi, "rep": rep, "funcs": funcs, "records": records})
        all_params = _with_workspaces(base, spaces)
        mdims = m_dims(graph, program) if dynamic else {}
        shown = [dict(p, shape=_symbolic(p, mdims)) for p in all_params]
        text = env.get_template("kernel.py.j2").render(
            dynamic=bool(dynamic), parts=parts, params=[dict(q, shape_text=shape_tuple(q["shape"])) for q in shown],
            hand_written=any(c["ws"] for p in parts for f in p["funcs"] for c in f["launches"]),
            graph_lines=graph_lines(graph, attrs=False))
        plan = {"params": [{k: v for k, v in p.items() if k != "comment"} for p in shown],
                "parts": [{"name": p["name"], "lo": p["lo"], "hi": p["hi"], "rep": p["rep"],
                           "funcs": [f["name"] for f in p["funcs"]]} for p in parts],
                "launches": [r for p in parts for r in p["records"]], "hints": hints}
        if dynamic:
            plan["dynamic"] = {"M": [ranges[0][1], ranges[-1][2]]}
        kn_odd = any(launch.w_kn(g) and graph.tensors[g.output].shape[1] % 2 for step in program for g in step[1:])
        if kn_odd or any(k % 2 for _, _, _, k, _ in launches(graph, program)):
            # odd K (or odd N of a [K, N] W): rows of x / w are not even 4-byte aligned, so no TMA and
            # no cp.async; TileLang 0.1.15 still emits a 2-byte cp.async for a one-row x tile (its codegen check then
            # fails) unless both switches are off: plain guarded loads instead
            plan["pass_configs"] = {"tl.enable_async_copy": False, "tirx.use_async_copy": False}
        return Rendered({"kernel.py": text, "plan.json": json.dumps(plan, indent=1) + "\n"}, used_templates(env))

    # --- compile / assemble / run: each writes its files into `dest` --------------------
    def compile(self, build_dir, dest):
        try:
            proc = TILELANG.run([str(LOWER), str(build_dir), str(dest)], capture_output=True, text=True,
                                timeout=TOOL_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"TileLang lowering did not finish in {TOOL_TIMEOUT} s") from None
        if proc.returncode != 0:
            raise RuntimeError(f"TileLang lowering failed:\n{(proc.stdout + proc.stderr)[-4000:]}")

    def assemble(self, build_dir, dest):
        build_dir, dest = Path(build_dir), Path(dest)
        nvcc = find_nvcc()
        root = next(TILELANG.path.glob("lib/python*/site-packages/tilelang"), None)
        if not nvcc or root is None:
            raise RuntimeError("nvcc or the tilelang env is missing: " + self.toolchain().reason)
        flags = nvcc_flags(json.loads((build_dir / "plan.json").read_text()).get("hints", {}))
        cmd = [nvcc, *flags, f"-I{root / '3rdparty/cutlass/include'}", f"-I{root / 'src'}",
               *reproducible(build_dir / "kernel.cu"), "-o", str(dest / "kernel.so")]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TOOL_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"nvcc did not finish in {TOOL_TIMEOUT} s") from None
        if proc.returncode != 0:
            raise RuntimeError(f"nvcc failed:\n{' '.join(cmd)}\n{proc.stderr[-4000:]}")
        lowered = json.loads((build_dir / "lower.json").read_text())
        manifest = {"format": "fusebuild.tir-cuda/v1", "library": "kernel.so", "entry": "call", "init": "init",
                    "error": "get_last_error", "stream_arg": True, **lowered,
                    "target": {"kind": "cuda", "arch": "sm_90a"}, "nvcc": " ".join(["nvcc", *flags]),
                    "nvcc_version": nvcc_version(nvcc),
                    "ptxas": [ln.strip() for ln in proc.stderr.splitlines() if "registers" in ln or "spill" in ln]}
        (dest / "kernel.json").write_text(json.dumps(manifest, indent=1) + "\n")

    def run(self, build_dir, graph, inputs: dict) -> dict:
        import torch

        from .loader import Artifact

        art = Artifact(Path(build_dir) / "kernel.json")
        dev = art.device
        args, outs = [], {}
        for q in art.tensor_params:
            t = graph.tensors[q["tensor"]]
            if q["role"] == "input":
                args.append(inputs[q["tensor"]].to(dev).contiguous())
            else:
                outs[q["tensor"]] = torch.full(t.shape, float("nan"), dtype=getattr(torch, t.dtype), device=dev)
                args.append(outs[q["tensor"]])
        art(*args)
        torch.cuda.synchronize(dev)
        return {n: outs[n].cpu() for n in graph.outputs}


def reproducible(source: Path) -> list:
    """nvcc arguments that make the same kernel.cu give the same kernel.so bytes wherever it is
    built (a worker's folder, another checkout), so a device's verdict and the cache hold:
    nvcc names internal device symbols after the source's path and a random number, and a
    static initializer after its temporary file (tmpxft_<pid>). The source is compiled from
    a folder named by its content, with a fixed seed; the .so is stripped (the loader needs
    only its dynamic symbols: call, init, get_last_error)."""
    data = source.read_bytes()
    digest = hashlib.sha256(data).hexdigest()[:16]
    tmp_root = Path("/tmp") if os.access("/tmp", os.W_OK) else Path(tempfile.gettempdir())   # not $TMPDIR: per worker
    fixed = tmp_root / "fusebuild-nvcc" / digest / "kernel.cu"
    if not fixed.exists() or fixed.read_bytes() != data:
        fixed.parent.mkdir(parents=True, exist_ok=True)
        tmp = fixed.with_name(f"kernel.cu.{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, fixed)              # concurrent builds of one source write the same bytes
    return [str(fixed), f"-frandom-seed=0x{digest[:8]}", "-Xlinker", "--strip-all"]


# --- render helpers -------------------------------------------------------------------

def _has_epilogue(expr, inline) -> bool:
    from ...ir.graph import Acc
    return not isinstance(expr, Acc) or bool(inline)


def _ranges(graph, program, hints, m, dynamic) -> list:
    """[(prim_func name, lo, hi, rep, [config per launch])]: one for a static M, else per M bucket."""
    shapes = launches(graph, program)
    if not dynamic:
        return [("main", m, m, m_bucket(m), [choose(kind, m, n, k, hints, where) for kind, _, n, k, where in shapes])]
    if set(dynamic) != {"M"}:
        raise UnsupportedGraph(f"dynamic dimensions {sorted(dynamic)}: tir-cuda takes only M at run time",
                               valid='dynamic={"M": (lo, hi)}')
    lo, hi = dynamic["M"]
    if not (isinstance(lo, int) and isinstance(hi, int) and 1 <= lo < hi):
        raise UnsupportedGraph(f"dynamic M range [{lo}, {hi}]", valid="integers 1 <= lo < hi")
    if not lo <= m <= hi:
        raise UnsupportedGraph(f"the graph's M={m} is outside the dynamic range [{lo}, {hi}]",
                               valid="a graph built at an M inside the range")
    if m == 1 and any(len(graph.tensors[t].shape) == 2 and graph.tensors[t].shape[0] == 1 and t in graph.inputs
                      for step in program for g in step[1:] for t in g.loads()):
        raise UnsupportedGraph("a graph at M=1 cannot tell an epilogue operand's M rows from a broadcast row",
                               valid="the graph at an M > 1 of the range")
    out = []
    for blo, bhi, rep in buckets(lo, hi):
        configs = [choose(kind, rep, n, k, hints, where) for kind, _, n, k, where in shapes]
        if out and out[-1][4] == configs:
            out[-1] = (out[-1][0], out[-1][1], bhi, out[-1][3], configs)
        else:
            out.append((f"m{blo}_{bhi}", blo, bhi, rep, configs))
    return [(f"m{o[1]}_{o[2]}", *o[1:]) for o in out]


def _with_workspaces(base, spaces) -> list:
    """Split-K partials (fp32 [split_k, M, N], the largest split_k of any part) before the outputs,
    and, where a split reduces in-kernel, its arrival counters (int32 [M, tiles along N]: a row per
    x row covers every tile row; zeroed once by the loader, reset by the split that reduces)."""
    out = list(base)
    for name, (sk, ws) in spaces.items():
        at = next(i for i, p in enumerate(out) if p["role"] == "output")
        out.insert(at, {"name": name, "role": "workspace", "tensor": None, "shape": [sk, ws["M"], ws["N"]],
                        "dtype": "float32", "m_dim": 1, "comment": f"workspace: split-K partial sums of {ws['group']}"})
        if ws.get("tick"):
            out.insert(at + 1, {"name": ws["tick"], "role": "workspace", "tensor": None, "zeroed": True,
                                "shape": [ws["M"], ws["tiles_n"]], "dtype": "int32", "m_dim": 0,
                                "comment": f"workspace: arrivals of the K splits of each tile of {ws['group']}"})
    return out


def _symbolic(p, mdims) -> list:
    """A parameter's shape with its M dimension written as "M" in a dynamic artifact."""
    shape = list(p["shape"])
    if p.get("m_dim") is not None:
        if mdims:
            shape[p["m_dim"]] = "M"
        return shape
    dim = mdims.get(p.get("alias_of_tensor") or p.get("tensor"))
    if dim is not None:
        shape[dim] = "M"
    return shape
