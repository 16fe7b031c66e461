"""tir-cuda backend: TileLang kernels for Hopper, cross-built here into a host-loadable .so.

Files in the build folder:
  kernel.py     rendered TileLang prim_func (templates/tilelang/), one or more launches
  plan.json     kernel parameters (graph tensor / workspace / alias) and each launch's tiles
  kernel.cu     CUDA device code + TileLang's host wrapper (compile: lower.py in the tilelang env)
  lower.json    what lowering found: parameters, launches (grid, block, smem), TMA descriptors
  kernel.so     nvcc -arch sm_90a, cudart static, no libcuda (assemble)
  kernel.json   manifest the loader reads (loader.py): parameters, entry points, nvcc, ptxas

What renders (graph.fuse() groups, recognized here; anything else is refused):
  one matmul group          GEMM with its epilogue applied to the fp32 accumulator tile
  SwiGLU                    two matmul groups sharing A (and K) where the second group's
                            epilogue reads the first's output and nothing else does: ONE
                            kernel with two accumulators (the A tile loaded once), the
                            second epilogue (with the first substituted) on both; then,
                            optionally, a GEMM that reads that result (the down projection)
The epilogue text comes from the group's expression tree (graph.fold) and ops.j2.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

from ...errors import FusebuildError
from ...fsutil import read_json
from ...ir.graph import broadcast_index, fold, fuse
from ..base import Backend as Base
from ..base import Device, Rendered, Toolchain
from ..templating import make_env, used_templates
from ..text import graph_lines, header, shape_tuple
from .env import TILELANG
from .tiles import choose

LOWER = Path(__file__).resolve().parent / "lower.py"
ENV_COMMAND = "python -m fusebuild env create tilelang"
NO_DEVICE = "built, not validated: no CUDA device"
GPU_FIX = "fusebuild gpu-validate (on a machine with a Hopper GPU)"
TOOL_TIMEOUT = 900           # seconds per TileLang lowering or nvcc run: a runaway fails its task, named
DTYPES = ("bfloat16", "float16")
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


class UnsupportedGraph(FusebuildError):
    """A graph the tir-cuda target cannot render."""


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
        return {"launches": [{"group": x["group"], "kind": x["kind"], "config": x["config"]}
                             for x in plan.get("launches", [])]}

    # --- render (pure text) -----------------------------------------------------------
    def render(self, job) -> Rendered:
        graph, hints = job.graph, job.hints
        env = make_env(self.template_folder)
        opmacros = env.get_template("ops.j2").module
        program = recognize(graph)
        params = _params(graph, program)
        pname = {p["tensor"]: p["name"] for p in params if p["role"] in ("input", "output", "workspace")}
        reads = {p["alias_of_tensor"]: p["name"] for p in params if p["role"] == "alias"}

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

        launches, plan_launches = [], []
        for step in program:
            if step[0] == "dual":
                ctx, record = _dual(graph, step[1], step[2], hints, pname, epi)
            else:
                ctx, record = _gemm(graph, step[1], hints, pname, reads, epi, step[0])
            launches.append(ctx)
            plan_launches.append(record)
            if "workspace" in record:          # split-K partial sums, before the outputs
                ws = record["workspace"]
                at = next(i for i, p in enumerate(params) if p["role"] == "output")
                params.insert(at, {**ws, "role": "workspace", "tensor": None,
                                   "comment": f"workspace: split-K partial sums of {record['group']}"})
        text = env.get_template("kernel.py.j2").render(
            **dict(header(job, self.name), graph_lines=graph_lines(graph, attrs=False)), launches=launches,
            params=[dict(p, shape_text=shape_tuple(p["shape"])) for p in params])
        plan = {"params": [{k: v for k, v in p.items() if k != "comment"} for p in params],
                "launches": plan_launches, "hints": hints}
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
               str(build_dir / "kernel.cu"), "-o", str(dest / "kernel.so")]
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


# --- recognizing what to render ---------------------------------------------------------

def _has_epilogue(expr, inline) -> bool:
    from ...ir.graph import Acc
    return not isinstance(expr, Acc) or bool(inline)


def recognize(graph) -> list:
    """[("gemm", group)] or [("dual", g1, g2)] (+ [("down", group)]); else UnsupportedGraph."""
    shown = "; ".join(f"{g.output} = " + (f"matmul({', '.join(g.matmul.inputs)})" if g.matmul else "elementwise")
                      + (f" + {len(g.nodes) - 1} fused op(s)" if len(g.nodes) > 1 else "") for g in fuse(graph))
    valid = ("one matmul with a fused epilogue, or SwiGLU: two matmuls sharing A whose second epilogue "
             "reads the first (optionally followed by one matmul of that result)")

    def refuse(why):
        raise UnsupportedGraph(f"tir-cuda cannot render this graph: {why} (fused groups: {shown})", valid=valid)

    for name, t in graph.tensors.items():
        if t.layout is not None:
            refuse(f"tensor {name} has a layout ({t.layout.form}); tir-cuda reads row-major tensors only")
        if t.dtype not in DTYPES:
            refuse(f"tensor {name} is {t.dtype}; tir-cuda computes in {' or '.join(DTYPES)}")
    if len({t.dtype for t in graph.tensors.values()}) > 1:
        refuse("mixed dtypes")
    groups = fuse(graph)
    for g in groups:
        if g.matmul is None:
            refuse(f"{g.output} is elementwise work not fused into a matmul's epilogue")
        if not g.matmul.attr["transpose_b"]:
            refuse(f"{g.output}: matmul B must be in nn.Linear layout (transpose_b: true)")
        if g.matmul.inputs[1] not in graph.inputs:
            refuse(f"{g.output}: matmul B ({g.matmul.inputs[1]}) must be a graph input")
    if len(groups) == 1:
        _check_reads(graph, groups[0], refuse, allowed=())
        return [("gemm", groups[0])]
    g1, g2 = groups[0], groups[1]
    if not _is_dual(graph, g1, g2):
        refuse("more than one matmul group and the first two are not the SwiGLU pattern")
    _check_reads(graph, g1, refuse, allowed=())
    _check_reads(graph, g2, refuse, allowed=(g1.output,))
    program = [("dual", g1, g2)]
    if len(groups) == 3:
        g3 = groups[2]
        if g3.matmul.inputs[0] != g2.output or g2.output in graph.outputs:
            refuse(f"{g3.output} must be a matmul of the SwiGLU result {g2.output}")
        _check_reads(graph, g3, refuse, allowed=())
        program.append(("down", g3))
    elif len(groups) > 3:
        refuse("more than three matmul groups")
    return program


def _is_dual(graph, g1, g2) -> bool:
    a1, a2 = g1.matmul.inputs[0], g2.matmul.inputs[0]
    return (a1 == a2 and a1 in graph.inputs and g1.output in g2.loads() and g1.output not in graph.outputs
            and graph.tensors[g1.output].shape == graph.tensors[g2.output].shape
            and all(n in g2.nodes for n in graph.consumers(g1.output)))


def _check_reads(graph, g, refuse, allowed):
    for name in g.loads():
        if name not in graph.inputs and name not in allowed:
            refuse(f"the epilogue of {g.output} reads the intermediate {name}")


def _params(graph, program) -> list:
    """Kernel parameters: graph inputs, workspaces (+ read aliases), graph outputs."""
    t = graph.tensors
    ps = [{"name": f"t_{n}", "role": "input", "tensor": n, "shape": list(t[n].shape), "dtype": t[n].dtype,
           "comment": f"input {n}"} for n in graph.inputs]
    for step in program:
        if step[0] == "dual" and program[-1][0] == "down":
            h = step[2].output
            # One TMA descriptor per buffer per prim_func (TileLang 0.1.15): the launch that
            # reads h gets its own parameter (same pointer, passed twice by the loader).
            ps.append({"name": f"ws_{h}", "role": "workspace", "tensor": h, "shape": list(t[h].shape),
                       "dtype": t[h].dtype, "comment": f"workspace: {h}, written by launch 1"})
            ps.append({"name": f"ws_{h}_in", "role": "alias", "alias_of": f"ws_{h}", "alias_of_tensor": h,
                       "tensor": h, "shape": list(t[h].shape), "dtype": t[h].dtype,
                       "comment": f"the same buffer as ws_{h}, read by launch 2"})
    ps += [{"name": f"t_{n}", "role": "output", "tensor": n, "shape": list(t[n].shape), "dtype": t[n].dtype,
            "comment": f"output {n}"} for n in graph.outputs]
    return ps



def _comment(g) -> str:
    return " ; ".join(f"{n.output} = {n.op}({', '.join(n.inputs)})" for n in g.nodes)


def _gemm(graph, g, hints, pname, reads, epi, kind):
    a, b = g.matmul.inputs
    m, n = graph.tensors[g.output].shape
    k = graph.tensors[a].shape[1]
    cfg = choose("down" if kind == "down" else "gemm", m, n, k, hints, f"matmul {g.output}")
    bm, bn, sk = cfg.block_M, cfg.block_N, cfg.split_k
    dtype = graph.tensors[g.output].dtype
    g_ctx = {"am": bm, "an": bn, "bk": cfg.block_K, "k_iters": k // sk // cfg.block_K, "stages": cfg.num_stages,
             "dtype": graph.tensors[a].dtype, "policy": cfg.policy,
             "k_base": f"bz * {k // sk} + " if sk > 1 else ""}
    smem_loads, smem = [], {}
    if cfg.mode == "direct":
        g_ctx.update(a_rows=f"by * {bm}", b_rows=f"bx * {bn}")
        grid, m_pad = [n // bn, m // bm, sk], m
        row, col = f"by * {bm} + i", f"bx * {bn} + j"
        if cfg.bias_smem and sk == 1:
            for name in g.loads():
                if graph.tensors[name].shape == (n,):
                    smem[name] = f"S_{name}"
                    smem_loads.append({"name": f"S_{name}", "size": bn, "dtype": graph.tensors[name].dtype,
                                       "src": pname[name], "offset": f"bx * {bn}"})
    else:
        g_ctx.update(a_rows=f"bx * {bm}", b_rows=f"by * {bn}")
        grid, m_pad = [n // bm, -(-m // bn), sk], -(-m // bn) * bn
        row, col = f"by * {bn} + j", f"bx * {bm} + i"
    ctx = {"kind": "gemm", "mode": cfg.mode, "grid": grid, "threads": cfg.threads, "swizzle": cfg.swizzle_panel,
           "annotations": cfg.annotations(), "smem_loads": smem_loads, "g": g_ctx, "split_k": sk, "M": m,
           "A": reads.get(a, pname[a]), "B": pname[b], "Y": pname[g.output], "out_dtype": dtype,
           "comment": _comment(g), "config": cfg.short(),
           "epi": epi(g.expr, "C_l[i, j]", row, col, smem) if sk == 1 else None}
    record = {"kind": kind, "group": g.output, "M": m, "N": n, "K": k, "config": dataclasses.asdict(cfg)}
    if sk > 1:
        part = f"ws_part_{g.output}"
        rn = next(x for x in (256, 128, 64) if n % x == 0)
        rm = math.gcd(m, 4)
        ctx["Part"] = part
        ctx["r"] = {"grid": [n // rn, m // rm], "rm": rm, "rn": rn,
                    "epi": epi(g.expr, "R_l[i, j]", f"ry * {rm} + i", f"rx * {rn} + j")}
        record["workspace"] = {"name": part, "shape": [sk, m_pad, n], "dtype": "float32"}
    return ctx, record


def _dual(graph, g1, g2, hints, pname, epi):
    x, w1 = g1.matmul.inputs
    w2 = g2.matmul.inputs[1]
    m, n = graph.tensors[g2.output].shape
    k = graph.tensors[x].shape[1]
    cfg = choose("dual", m, n, k, hints, f"the dual gate/up kernel of {g1.output}, {g2.output}")
    bm, bn = cfg.block_M, cfg.block_N
    row, col = f"by * {bm} + i", f"bx * {bn} + j"
    first = epi(g1.expr, "C1_l[i, j]", row, col) or "C1_l[i, j]"
    g_ctx = {"am": bm, "an": bn, "bk": cfg.block_K, "k_iters": k // cfg.block_K, "stages": cfg.num_stages,
             "dtype": graph.tensors[x].dtype, "policy": cfg.policy}
    ctx = {"kind": "dual", "grid": [n // bn, m // bm], "threads": cfg.threads, "swizzle": cfg.swizzle_panel,
           "annotations": cfg.annotations(), "smem_loads": [], "g": g_ctx, "A": pname[x], "B1": pname[w1],
           "B2": pname[w2], "Y": pname[g2.output], "out_dtype": graph.tensors[g2.output].dtype,
           "comment": f"{_comment(g1)} | {_comment(g2)} (two accumulators, one A tile)", "config": cfg.short(),
           "epi": epi(g2.expr, "C2_l[i, j]", row, col, inline={g1.output: first})}
    record = {"kind": "dual", "group": g2.output, "first": g1.output, "M": m, "N": n, "K": k,
              "config": dataclasses.asdict(cfg)}
    return ctx, record
