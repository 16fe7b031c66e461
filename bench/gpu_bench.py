"""GPU benchmark of tir-cuda: fused TileLang artifacts built by fusebuild vs torch, on one GPU, in one run.

Steps, because the build machine has no GPU and the GPU machine has no TileLang:

    python bench/gpu_bench.py build  [--work W] [--set full|smoke|mid] [--candidates] [--pack F]   # here
    python bench/gpu_bench.py pack   --work W [--baseline B] --dest F   # here: W's artifacts (+ B's same ones)
    python bench/gpu_bench.py validate-dynamic [--work W] --json dyn.json     # on the GPU (torch only)
    python bench/gpu_bench.py time   [--work W] --json raw.json               # on the GPU (torch only)
    python bench/gpu_bench.py report --json raw.json                           # here: bench/results/gpu.*
(static artifacts are validated with `python -m fusebuild gpu-validate --specs W/specs --out W/out`.)

What `build` writes (bf16; w in nn.Linear layout):
  GEMM + bias + {silu, relu, gelu} at (N, K) = Llama-3-8B up (14336, 4096) and down (4096, 14336),
      4096 x 4096, Llama-3.2-1B up (8192, 2048) and down (2048, 8192); decode M = 1, 2, 4, 8, 16,
      32, 64 and prefill M = 128, 1024, 4096
  SwiGLU MLP (gate/up + down) at Llama-3.2-1B (E 2048, H 8192) and Llama-3-8B (4096, 14336), same M
  odd shapes: 77x1000x333 and 300x4097x768 bias+SiLU (odd K: no TMA for x, w; odd N: none for y),
      1024x896x4864 bias + residual add
  dynamic-M artifacts (one .so for M in [1, 4096]) for bias+SiLU at every (N, K) and both SwiGLUs,
      timed at the same M as the static ones (interleaved with them) and validated at
      M = 1, 2, 7, 16, 17, 33, 64, 65, 127, 300, 1024, 4096
  --candidates: one spec per alternative decode config of tiles.candidates() (the data a tuner
      will search) at a few decode shapes, so one run compares them side by side
`--set smoke` is a small subset of each (for checking the code, not for results).
`--set mid`: the M buckets between powers of two (M = 600, 768, 896, 1280, 1536) for bias + SiLU
      at 4096 x 4096, both Llama-3-8B and the Llama-3.2-1B up projections, bias + ReLU at the 1B
      down projection, both SwiGLUs, and two dynamic-M artifacts validated across those M
      (bench/results/gpu_mid_m_*: built once by this fusebuild and once by main, `pack --baseline`,
      `time --baseline`).

`time` measures every implementation of a row interleaved (fused, dynamic, torch eager, optionally
torch.compile: round-robin, one timed loop each per round, median over rounds), each loop replayed
as one CUDA graph (device time, the headline numbers: a decode kernel of 10 us is otherwise timed
as Python's launch overhead) and again as plain Python calls (`*_loop_ms`), on random data,
inputs rotated over enough sets to exceed L2; it measures device-to-device copy bandwidth at the
start and the end of the run and samples nvidia-smi clocks.sm / power.draw with every row. Decode
rows report GB/s = weight bytes read / fused time, and that as a fraction of the copy bandwidth
(read + write counted, as the copy moves them).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PEAK = 989.0          # H100/H200 SXM dense bf16 TFLOP/s (spec sheet)
DECODE_MS = [1, 2, 4, 8, 16, 32, 64]
PREFILL_MS = [128, 1024, 4096]
GEMM_NK = {"l8b_up": (14336, 4096), "l8b_down": (4096, 14336), "sq4096": (4096, 4096),
           "l1b_up": (8192, 2048), "l1b_down": (2048, 8192)}
EPILOGUES = {"bias_silu": "silu", "bias_relu": "relu", "bias_gelu": "gelu"}
SWIGLU = {"l1b": (2048, 8192), "l8b": (4096, 14336)}
ODD = {"odd_77x1000x333": (77, 1000, 333, "silu"), "odd_300x4097x768": (300, 4097, 768, "silu"),
       "residual_1024x896x4864": (1024, 896, 4864, "residual")}
DYN_RANGE = (1, 4096)
DYN_VALIDATE = [1, 2, 7, 16, 17, 33, 64, 65, 127, 300, 1024, 4096]
SMOKE = {"gemm": ["sq4096", "l1b_down"], "ms": [1, 16, 64, 128], "swiglu": ["l1b"], "swiglu_ms": [1, 32],
         "dyn": ["bias_silu_l1b_down", "swiglu_l1b"], "dyn_validate": [1, 7, 33, 65, 300]}
MID = {"ms": [600, 768, 896, 1280, 1536],
       "gemm": {"bias_silu_sq4096": "silu", "bias_silu_l8b_up": "silu", "bias_silu_l8b_down": "silu",
                "bias_silu_l1b_up": "silu", "bias_relu_l1b_down": "relu"},
       "dyn": ["bias_silu_sq4096", "swiglu_l1b"],
       "dyn_validate": [7, 64, 300, 600, 768, 896, 1000, 1100, 1280, 1536, 1800, 2048, 3001]}
CANDIDATE_SHAPES = [("sq4096", 16), ("l1b_down", 16)]   # (N, K) name, M bucket: few W tiles (split-K or not?)

GEMM_SPEC = """\
name: {name}
params:
  M: {ms}
  N: {N}
  K: {K}
inputs:
  x:    {{shape: [M, K], dtype: bfloat16}}
  w:    {{shape: [N, K], dtype: bfloat16}}
  bias: {{shape: [N], dtype: bfloat16}}{extra_input}
graph:
  - {{op: matmul, inputs: [x, w], output: y, transpose_b: true, epilogue: [{{add: bias}}, {epi}]}}
outputs: [y]
targets: [tir-cuda]
{schedule}"""
SWIGLU_SPEC = """\
name: {name}
params:
  M: {ms}
  E: {E}
  H: {H}
inputs:
  x:  {{shape: [M, E], dtype: bfloat16}}
  wg: {{shape: [H, E], dtype: bfloat16}}
  wu: {{shape: [H, E], dtype: bfloat16}}
  wd: {{shape: [E, H], dtype: bfloat16}}
graph:
  - {{op: matmul, inputs: [x, wg], output: gate, transpose_b: true}}
  - {{op: matmul, inputs: [x, wu], output: up, transpose_b: true}}
  - {{op: silu, inputs: [gate], output: act}}
  - {{op: mul, inputs: [act, up], output: h}}
  - {{op: matmul, inputs: [h, wd], output: y, transpose_b: true}}
outputs: [y]
targets: [tir-cuda]
"""


PLAIN_SPEC = """\
name: {name}
params:
  M: {ms}
  N: {N}
  K: {K}
inputs:
  x: {{shape: [M, K], dtype: bfloat16}}
  w: {{shape: [N, K], dtype: bfloat16}}
graph:
  - {{op: matmul, inputs: [x, w], output: y, transpose_b: true}}
outputs: [y]
targets: [tir-cuda]
"""
CORE = {"gemm_l8b_up": [1024, 4096]}     # the GEMM core (no epilogue) against torch F.linear


def gemm_spec(name, ms, n, k, act, schedule="") -> str:
    if act == "residual":
        return GEMM_SPEC.format(name=name, ms=ms, N=n, K=k, epi="{add: r}", schedule=schedule,
                                extra_input="\n  r:    {shape: [M, N], dtype: bfloat16}")
    return GEMM_SPEC.format(name=name, ms=ms, N=n, K=k, epi=act, schedule=schedule, extra_input="")


def spec_texts(which: str = "full") -> dict:
    """{file stem: spec text} of the static artifacts of a set (full, smoke, mid)."""
    out = {}
    if which == "mid":
        for name, act in MID["gemm"].items():
            n, k = GEMM_NK[name.split("_", 2)[2]]
            out[name] = gemm_spec(name, MID["ms"], n, k, act)
        for size, (e, h) in SWIGLU.items():
            out[f"swiglu_{size}"] = SWIGLU_SPEC.format(name=f"swiglu_{size}", ms=MID["ms"], E=e, H=h)
        return out
    smoke = which == "smoke"
    ms = SMOKE["ms"] if smoke else DECODE_MS + PREFILL_MS
    for epi, act in EPILOGUES.items():
        if smoke and epi != "bias_silu":
            continue
        for nk, (n, k) in GEMM_NK.items():
            if not smoke or nk in SMOKE["gemm"]:
                out[f"{epi}_{nk}"] = gemm_spec(f"{epi}_{nk}", ms, n, k, act)
    for size, (e, h) in SWIGLU.items():
        if not smoke or size in SMOKE["swiglu"]:
            out[f"swiglu_{size}"] = SWIGLU_SPEC.format(name=f"swiglu_{size}", ms=SMOKE["swiglu_ms"] if smoke
                                                       else DECODE_MS + PREFILL_MS, E=e, H=h)
    for name, (m, n, k, act) in ODD.items():
        out[name] = gemm_spec(name, [m], n, k, act)
    for name, ms in CORE.items():
        n, k = GEMM_NK[name.split("_", 1)[1]]
        out[name] = PLAIN_SPEC.format(name=name, ms=ms, N=n, K=k)
    return out


def dynamic_texts(which: str = "full") -> dict:
    """{name: spec text} of the dynamic-M artifacts: `M: {dynamic: DYN_RANGE, validate: [...]}`
    (validation runs at 1, a prime, the maximum and each listed M)."""
    sizes = {"smoke": SMOKE["dyn_validate"], "mid": MID["dyn_validate"]}.get(which, DYN_VALIDATE)
    ms = f"{{dynamic: [{DYN_RANGE[0]}, {DYN_RANGE[1]}], validate: {[m for m in sizes if m > DYN_RANGE[0]]}}}"
    out = {f"bias_silu_{nk}": gemm_spec(f"bias_silu_{nk}", ms, n, k, "silu") for nk, (n, k) in GEMM_NK.items()}
    out.update({f"swiglu_{s}": SWIGLU_SPEC.format(name=f"swiglu_{s}", ms=ms, E=e, H=h) for s, (e, h) in SWIGLU.items()})
    keep = {"smoke": SMOKE["dyn"], "mid": MID["dyn"]}.get(which)
    return {k: v for k, v in out.items() if keep is None or k in keep}


def candidate_texts() -> dict:
    """One spec per alternative config of tiles.candidates() at CANDIDATE_SHAPES (decode, bias+SiLU),
    the bias + residual 1024 x 896 x 4864 GEMM, and the SwiGLU gate/up kernel at Llama-3.2-1B."""
    sys.path.insert(0, str(REPO))
    from fusebuild.backends.tir_cuda.tiles import candidates, config_hints
    out = {}
    for nk, m in CANDIDATE_SHAPES:
        n, k = GEMM_NK[nk]
        for i, cfg in enumerate(candidates("gemm", m, n, k)[1:], 1):
            hints = json.dumps(config_hints(cfg, "")).replace('"', "")
            out[f"cand_{nk}_{i}"] = gemm_spec(f"cand_{nk}_{i}", [m], n, k, "silu",
                                              schedule=f"schedule: {{tir-cuda: {hints}}}\n")
    m, n, k, act = ODD["residual_1024x896x4864"]      # few CTAs with the swept prefill tiles
    for i, cfg in enumerate(candidates("gemm", m, n, k)[1:], 1):
        hints = json.dumps(config_hints(cfg, "")).replace('"', "")
        out[f"cand_residual_{i}"] = gemm_spec(f"cand_residual_{i}", [m], n, k, act,
                                              schedule=f"schedule: {{tir-cuda: {hints}}}\n")
    e, h = SWIGLU["l1b"]
    for i, cfg in enumerate(candidates("dual", 16, h, e)[1:], 1):
        hints = json.dumps(config_hints(cfg, "dual_")).replace('"', "")
        text = SWIGLU_SPEC.format(name=f"cand_swiglu_l1b_{i}", ms=[16], E=e, H=h)
        out[f"cand_swiglu_l1b_{i}"] = text + f"schedule: {{tir-cuda: {hints}}}\n"
    return out


def write_specs(work: Path, which: str = "full", with_candidates: bool = False):
    for folder in ("specs", "specs_dyn"):
        shutil.rmtree(work / folder, ignore_errors=True)
        (work / folder).mkdir(parents=True)
    texts = spec_texts(which) | (candidate_texts() if with_candidates else {})
    for name, text in texts.items():
        (work / "specs" / f"{name}.yaml").write_text(text)
    for name, text in dynamic_texts(which).items():
        (work / "specs_dyn" / f"{name}.yaml").write_text(text)


def build_dynamic(work: Path):
    """Each specs_dyn/ spec -> ONE artifact for M in DYN_RANGE under out_dyn/<name>/tir-cuda/."""
    sys.path.insert(0, str(REPO))
    from fusebuild.backends import TARGETS, get_backend
    from fusebuild.backends.base import RenderJob
    from fusebuild.spec import load_spec
    backend = get_backend("tir-cuda")
    for path in sorted((work / "specs_dyn").glob("*.yaml")):
        spec = load_spec(path)
        (v,) = spec.variants            # the one dynamic-M variant
        dest = work / "out_dyn" / spec.name / "tir-cuda"
        dest.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        hints = TARGETS["tir-cuda"].hints.resolve(v.schedule.get("tir-cuda", {}))
        files = backend.render(RenderJob(v.graph, hints, v.spec, v.name)).files
        for fname, text in files.items():
            (dest / fname).write_text(text)
        backend.compile(dest, dest)
        backend.assemble(dest, dest)
        parts = json.loads((dest / "plan.json").read_text())["parts"]
        print(f"dynamic {spec.name}: {len(parts)} parts {[(p['lo'], p['hi']) for p in parts]} "
              f"{time.perf_counter() - t0:.0f} s", flush=True)


def cmd_build(args):
    work = Path(args.work)
    write_specs(work, args.set, args.candidates)
    shutil.copy(REPO / "dodo.py", work / "dodo.py")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "doit", "-n", str(args.jobs), "build"], cwd=work, text=True,
                          capture_output=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    print(proc.stdout[-6000:], proc.stderr[-3000:])
    print(f"build: {time.perf_counter() - start:.0f} s")
    if not list((work / "out").glob("*/*/tir-cuda/kernel.so")):   # e.g. no tilelang env: every artifact is not-run
        sys.exit("build: no tir-cuda artifact was built (see the summary above); nothing to pack")
    build_dynamic(work)
    if args.pack:
        pack(work, Path(args.pack))
    return proc.returncode


def pack(work: Path, dest: Path, baseline: Path | None = None):
    """specs (+ specs_dyn) + every artifact's stripped kernel.so + kernel.json (+ plan.json,
    validation.json); with `baseline`, the same static and dynamic-M artifacts of that work dir under
    base/ (unpacked next to the work dir's: `time --work W --baseline W/base`)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    missing = []

    def add_artifact(tf, folder: Path, arc: str):
        stripped = folder / "kernel.stripped.so"
        subprocess.run(["strip", "-o", str(stripped), str(folder / "kernel.so")], check=True)
        tf.add(stripped, arcname=f"{arc}/kernel.so")
        stripped.unlink()
        for f in ("kernel.json", "plan.json", "validation.json"):
            if (folder / f).exists():
                tf.add(folder / f, arcname=f"{arc}/{f}")

    with tarfile.open(dest, "w:xz", preset=9) as tf:
        for p in sorted((work / "specs").glob("*.yaml")) + sorted((work / "specs_dyn").glob("*.yaml")):
            tf.add(p, arcname=str(p.relative_to(work)))
        for so in sorted((work / "out").glob("*/*/tir-cuda/kernel.so")) + sorted((work / "out_dyn").glob("*/tir-cuda/kernel.so")):
            add_artifact(tf, so.parent, str(so.parent.relative_to(work)))
        ours = sorted((work / "out").glob("*/*/tir-cuda/kernel.so")) + sorted((work / "out_dyn").glob("*/tir-cuda/kernel.so"))
        for so in ours if baseline else []:
            rel = so.parent.relative_to(work)
            if (baseline / rel / "kernel.so").exists():
                add_artifact(tf, baseline / rel, f"base/{rel}")
            else:
                missing.append(str(rel))
    print(f"packed {dest} ({dest.stat().st_size / 1e6:.1f} MB)"
          + (f"; no baseline for {len(missing)}: {', '.join(missing[:5])}" if missing else ""))


def cmd_pack(args):
    pack(Path(args.work), Path(args.dest), Path(args.baseline) if args.baseline else None)


# --- on the GPU ------------------------------------------------------------------------

def clocks() -> dict:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=clocks.sm,clocks.mem,power.draw,temperature.gpu",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10).stdout
        sm, mem, power, temp = (x.strip() for x in out.strip().splitlines()[0].split(","))
        return {"sm_mhz": float(sm), "mem_mhz": float(mem), "power_w": float(power), "temp_c": float(temp)}
    except Exception as err:       # no nvidia-smi: say so in the record
        return {"error": f"{type(err).__name__}: {err}"[:200]}


def copy_bandwidth(nbytes=2 << 30) -> float:
    """Device-to-device copy, GB/s counting read + write (median of 20)."""
    import torch
    src = torch.randint(0, 255, (nbytes,), dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    ms = interleaved({"copy": [lambda: dst.copy_(src)]}, rounds=20, loop_ms=5.0)["copy"]
    del src, dst
    return 2 * nbytes / (ms * 1e-3) / 1e9


def _graph(fns, n):
    """A replay function of one CUDA graph of n calls (rotating over fns): device time without the
    host's launch overhead (as a model served through CUDA graphs or torch.compile sees it)."""
    import torch
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):          # warm-up off the default stream, as capture requires
        for f in fns:
            f()
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for i in range(n):
            fns[i % len(fns)]()
    return g


def interleaved(impls: dict, rounds=15, loop_ms=1.0, graphs=False) -> dict:
    """{name: median ms per call}: every round times one loop of each implementation in turn
    (round-robin, so clock and power drift hits all alike); a loop rotates over its input sets.
    graphs=True: each loop is one CUDA-graph replay (device time); else Python calls (+ host time)."""
    import torch
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    run, inner = {}, {}
    for name, fns in impls.items():            # warm-up, then size each loop to ~loop_ms
        for i in range(max(3, len(fns))):
            fns[i % len(fns)]()
        torch.cuda.synchronize()
        s.record()
        for i in range(5):
            fns[i % len(fns)]()
        e.record()
        torch.cuda.synchronize()
        inner[name] = max(len(fns), min(200, int(loop_ms * 5 / max(s.elapsed_time(e), 1e-3))))
        if graphs:
            g = _graph(fns, inner[name])
            run[name] = g.replay
            run[name + "/graph"] = g          # keep it alive
            g.replay()
        else:
            run[name] = lambda fns=fns, n=inner[name]: [fns[i % len(fns)]() for i in range(n)]
    torch.cuda.synchronize()
    times = {name: [] for name in impls}
    for _ in range(rounds):
        for name in impls:
            s.record()
            run[name]()
            e.record()
            torch.cuda.synchronize()
            times[name].append(s.elapsed_time(e) / inner[name])
    return {name: statistics.median(t) for name, t in times.items()}


def _problem(v):
    """(kind, op, M, N, K, flops, weight bytes, make inputs, eager fn) of a bench variant."""
    import torch.nn.functional as F
    p = v.params
    if v.spec.startswith(("swiglu", "cand_swiglu")):
        m, e, h = p["M"], p["E"], p["H"]

        def eager(x, wg, wu, wd):
            return F.linear(F.silu(F.linear(x, wg)) * F.linear(x, wu), wd)
        shapes = [(m, e), (h, e, e), (h, e, e), (e, h, h)]
        return "swiglu", "swiglu", m, e, h, 6 * m * e * h, 6 * e * h, shapes, eager, (m, e)
    if v.spec.startswith("mlp_gelu"):         # GPT-2 / BERT / ViT MLP: fc1 + bias + GELU, fc2 + bias + residual
        m, e, h = p["M"], p["E"], p["H"]

        def eager(x, w1, b1, w2, b2):
            return F.linear(F.gelu(F.linear(x, w1, b1)), w2, b2) + x
        shapes = [(m, e), (h, e, e), (h,), (e, h, h), (e,)]
        return "mlp", "mlp_gelu", m, e, h, 4 * m * e * h, 4 * e * h, shapes, eager, (m, e)
    m, n, k = p["M"], p["N"], p["K"]
    if len(v.graph.nodes) == 1:               # the GEMM core: torch's F.linear (cuBLAS) is the baseline
        def eager(x, w):
            return F.linear(x, w)
        shapes, op = [(m, k), (n, k, k)], "gemm"
    elif "r" in v.graph.inputs:
        def eager(x, w, b, r):
            return F.linear(x, w, b) + r
        shapes, op = [(m, k), (n, k, k), (n,), (m, n)], "bias_residual"
    else:
        act = {"silu": F.silu, "relu": F.relu, "gelu": F.gelu}[v.graph.nodes[-1].op]

        def eager(x, w, b, act=act):
            return act(F.linear(x, w, b))
        shapes, op = [(m, k), (n, k, k), (n,)], f"bias_{v.graph.nodes[-1].op}"
    return "gemm", op, m, n, k, 2 * m * n * k, 2 * n * k, shapes, eager, (m, n)


def cmd_time(args):
    import torch
    sys.path.insert(0, str(REPO))
    from fusebuild.backends.tir_cuda.loader import Artifact
    from fusebuild.plan.project import Project

    torch.backends.cuda.matmul.allow_tf32 = False
    work, dev = Path(args.work), torch.device("cuda")
    project = Project(work / "specs", work / "out")
    assert not project.errors, project.errors
    dyn = {p.parent.parent.name: Artifact(p) for p in sorted((work / "out_dyn").glob("*/tir-cuda/kernel.json"))}
    base_dyn = {p.parent.parent.name: Artifact(p) for p in
                sorted((Path(args.baseline) / "out_dyn").glob("*/tir-cuda/kernel.json"))} if args.baseline else {}
    run = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "peak_tflops": PEAK,
           "method": "interleaved round-robin, median of 15 rounds of ~1 ms loops after warm-up; each loop one CUDA "
                     "graph replay (device time; *_loop_ms: the same calls from Python, host overhead included); "
                     "random inputs rotated over sets totalling >= 400 MB", "clocks_start": clocks()}
    run["copy_gbps_start"] = copy_bandwidth()
    print(f"copy bandwidth {run['copy_gbps_start']:.0f} GB/s (read + write)  clocks {run['clocks_start']}", flush=True)
    rows = []

    def dump():
        Path(args.json).write_text(json.dumps(dict(run, rows=rows), indent=1) + "\n")
    for a in project.artifacts:
        v = a.variant
        if args.only and not v.spec.startswith(tuple(args.only.split(","))):
            continue
        if not (a.dir / "kernel.json").exists():
            print("missing", a.id, flush=True)
            continue
        kind, op, m, n, k, flops, wbytes, shapes, eager, out_shape = _problem(v)
        g = torch.Generator(device=dev).manual_seed(0)

        def make():
            return [(torch.randn(s[:2], device=dev, generator=g) * (s[2] ** -0.5 if len(s) == 3 else 1.0))
                    .to(torch.bfloat16) for s in shapes]
        nbytes = 2 * sum(math.prod(s[:2]) for s in shapes)
        sets = [make() for _ in range(max(1, min(8, math.ceil(400e6 / nbytes))))]
        outs = [torch.empty(out_shape, device=dev, dtype=torch.bfloat16) for _ in sets]
        art = Artifact(a.dir / "kernel.json")
        impls = {"fused": [art.bind(*s, o) for s, o in zip(sets, outs)],
                 "eager": [lambda s=s: eager(*s) for s in sets]}
        base = Path(args.baseline) / a.dir.relative_to(work) / "kernel.json" if args.baseline else None
        if base is not None and base.exists():        # the same artifact as an earlier fusebuild built it
            impls["baseline"] = [Artifact(base).bind(*s, o) for s, o in zip(sets, outs)]
        dname = v.spec if v.spec in dyn else None
        if dname and dyn[dname].range[0] <= m <= dyn[dname].range[1]:
            impls["dynamic"] = [dyn[dname].bind(*s, o) for s, o in zip(sets, outs)]
            if dname in base_dyn:       # the same dynamic-M artifact as the earlier fusebuild built it
                impls["baseline_dynamic"] = [base_dyn[dname].bind(*s, o) for s, o in zip(sets, outs)]
        row = {"spec": v.spec, "kind": kind, "epilogue": op, "M": m, "N": n, "K": k, "flops": flops,
               "weight_bytes": wbytes, "config": [ln["config"] for ln in art.manifest["launches"]],
               "hints": v.schedule.get("tir-cuda", {}), "compile_ms": None}
        if args.compile == "all" or (args.compile == "silu" and op in ("bias_silu", "swiglu")):
            try:
                torch._dynamo.reset()
                cf = torch.compile(eager, dynamic=False)
                t0 = time.time()
                cf(*sets[0])
                torch.cuda.synchronize()
                row["compile_seconds"] = round(time.time() - t0, 1)
                impls["compile"] = [lambda s=s: cf(*s) for s in sets]
            except Exception as err:     # record, keep going
                row["compile_error"] = f"{type(err).__name__}: {err}"[:300]
        compiled = impls.pop("compile", None)
        ms = interleaved(impls, graphs=True)                    # device time: the headline numbers
        loop = interleaved(dict(impls, **({"compile": compiled} if compiled else {})))   # + host time
        row.update({f"{name}_ms": t for name, t in ms.items()}, clocks=clocks())
        row.update({f"{name}_loop_ms": t for name, t in loop.items()})
        if compiled:
            row["compile_ms"] = loop["compile"]
        rows.append(row)
        dump()      # after every row: a run cut short still leaves its numbers
        extra = f"  dyn {ms['dynamic'] * 1e3:8.1f} us" if "dynamic" in ms else ""
        extra += f"  baseline {ms['baseline'] * 1e3:8.1f} us" if "baseline" in ms else ""
        extra += f"  baseline dyn {ms['baseline_dynamic'] * 1e3:8.1f} us" if "baseline_dynamic" in ms else ""
        print(f"{a.id:50s} fused {ms['fused'] * 1e3:8.1f} us  eager {ms['eager'] * 1e3:8.1f} us  "
              f"x{ms['eager'] / ms['fused']:.3f}  {wbytes / ms['fused'] / 1e6:7.0f} GB/s{extra}  | loop: fused "
              f"{loop['fused'] * 1e3:.1f} eager {loop['eager'] * 1e3:.1f} us", flush=True)
        del art, sets, outs, impls
    run["copy_gbps_end"] = copy_bandwidth()
    run["clocks_end"] = clocks()
    dump()


def cmd_validate_dynamic(args):
    """Every dynamic-M artifact at each M its specs_dyn/ spec lists, against torch (gpu_validate's check)."""
    import torch
    sys.path.insert(0, str(REPO))
    from fusebuild.backends import get_backend
    from fusebuild.run.gpu_validate import validate_one
    from fusebuild.spec import load_spec

    from fusebuild.plan.artifacts import FolderArtifact

    work, backend, gpu = Path(args.work), get_backend("tir-cuda"), torch.cuda.get_device_name()
    reports = []
    for path in sorted((work / "specs_dyn").glob("*.yaml")):
        spec = load_spec(path)
        folder = work / "out_dyn" / spec.name / "tir-cuda"
        for v in spec.variants:       # one: validate_one runs it at each of its sample sizes
            r = validate_one(FolderArtifact(v, "tir-cuda", work / "out_dyn", folder), backend, gpu)
            r.update(dynamic=True, M=[s.get("M") for s in r.get("samples", [])])
            reports.append(r)
            print(f"{r['status']:5} {spec.name} dynamic M={r['M']}  max_rel={r.get('max_rel')}  "
                  f"{r.get('reason', '')}", flush=True)
    bad = [r for r in reports if r["status"] != "pass"]
    print(f"{gpu}: {len(reports) - len(bad)}/{len(reports)} dynamic-M runs pass")
    Path(args.json).write_text(json.dumps({"device": gpu, "reports": reports}, indent=1, default=str) + "\n")
    return 1 if bad else 0


# --- report (here) -------------------------------------------------------------------------

def enrich(raw: dict) -> dict:
    copy = min(raw.get("copy_gbps_start") or math.inf, raw.get("copy_gbps_end") or math.inf)
    rows = []
    for r in raw["rows"]:
        tf = r["flops"] / (r["fused_ms"] * 1e-3) / 1e12
        gbps = r["weight_bytes"] / (r["fused_ms"] * 1e-3) / 1e9
        rows.append(dict(r, fused_tflops=tf, pct_peak=100 * tf / PEAK, weight_gbps=gbps, frac_copy=gbps / copy,
                         eager_tflops=r["flops"] / (r["eager_ms"] * 1e-3) / 1e12,
                         speedup_eager=r["eager_ms"] / r["fused_ms"],
                         speedup_eager_loop=(r["eager_loop_ms"] / r["fused_loop_ms"]) if r.get("fused_loop_ms") else None,
                         dyn_vs_static=(r["dynamic_ms"] / r["fused_ms"]) if r.get("dynamic_ms") else None,
                         vs_baseline=(r["baseline_ms"] / r["fused_ms"]) if r.get("baseline_ms") else None,
                         speedup_compile=(r["compile_ms"] / r["fused_ms"]) if r.get("compile_ms") else None))
    rows.sort(key=lambda r: (r["spec"], r["M"]))
    bars = []
    for r in rows:
        shape = f"{r['spec']} {r['epilogue']} {r['M']}x{r['N']}x{r['K']}"
        if r["spec"].startswith("cand_"):
            continue
        bars.append({"bar": f"fused >= eager: {shape}", "met": r["speedup_eager"] >= 1.0, "value": r["speedup_eager"]})
        if r["M"] <= 16:
            bars.append({"bar": f">= 1.3x eager (decode): {shape}", "met": r["speedup_eager"] >= 1.3,
                         "value": r["speedup_eager"]})
            bars.append({"bar": f">= 75% of copy bandwidth (decode): {shape}", "met": r["frac_copy"] >= 0.75,
                         "value": r["frac_copy"]})
        if r["dyn_vs_static"] is not None:
            bars.append({"bar": f"dynamic within 5% of static: {shape}", "met": r["dyn_vs_static"] <= 1.05,
                         "value": r["dyn_vs_static"]})
    return dict(raw, copy_gbps=copy, rows=rows, bars=bars)


def markdown(res: dict) -> str:
    c0, c1 = res.get("clocks_start", {}), res.get("clocks_end", {})
    out = [f"# tir-cuda vs torch on {res['device']} (torch {res['torch']}, bf16)", "",
           f"{res['method']}. Peak: {PEAK:.0f} TFLOP/s (dense bf16). speedup = torch time / fused time. "
           f"Copy bandwidth (device to device, read + write): {res.get('copy_gbps_start', 0):.0f} GB/s at the start, "
           f"{res.get('copy_gbps_end', 0):.0f} at the end. Clocks start {c0}, end {c1}.", "",
           "Device times (CUDA-graph replays); `x eager loop`: the same two called from Python (host overhead "
           "included, which dominates at decode sizes).", "",
           "| spec | op | M | N | K | fused us | TFLOP/s | weight GB/s | % copy | eager us | x eager | x eager loop | "
           "dyn us | dyn/static | compile us | SM MHz | W | tiles |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in res["rows"]:
        c = f"{r['compile_ms'] * 1e3:.1f}" if r.get("compile_ms") else "-"
        d = f"{r['dynamic_ms'] * 1e3:.1f}" if r.get("dynamic_ms") else "-"
        dv = f"{r['dyn_vs_static']:.3f}" if r.get("dyn_vs_static") else "-"
        tiles = " + ".join(f"{x['mode']} {x['block_M']}x{x['block_N']}x{x['block_K']} s{x['num_stages']}"
                           + (f" sk{x['split_k']}" if x["split_k"] > 1 else "")
                           + (f" mb{x['min_blocks']}" if x.get("min_blocks", 0) > 1 else "") for x in r["config"])
        cl = r.get("clocks", {})
        out.append(f"| {r['spec']} | {r['epilogue']} | {r['M']} | {r['N']} | {r['K']} | {r['fused_ms'] * 1e3:.1f} | "
                   f"{r['fused_tflops']:.1f} | {r['weight_gbps']:.0f} | {100 * r['frac_copy']:.0f} | "
                   f"{r['eager_ms'] * 1e3:.1f} | {r['speedup_eager']:.3f} | "
                   f"{r['speedup_eager_loop'] and format(r['speedup_eager_loop'], '.3f') or '-'} | {d} | {dv} | {c} | "
                   f"{cl.get('sm_mhz', '-')} | {cl.get('power_w', '-')} | {tiles} |")
    if any(r.get("vs_baseline") for r in res["rows"]):
        out += ["", "## Before / after", "",
                "`before us`: the same artifact built by the earlier fusebuild (`time --baseline`), timed in the "
                "same interleaved run; `x before` = before / now (> 1: now faster).", "",
                "| spec | M | N | K | now us | before us | x before | now % copy |",
                "|---|---:|---:|---:|---:|---:|---:|---:|"]
        out += [f"| {r['spec']} | {r['M']} | {r['N']} | {r['K']} | {r['fused_ms'] * 1e3:.1f} | "
                f"{r['baseline_ms'] * 1e3:.1f} | {r['vs_baseline']:.3f} | {100 * r['frac_copy']:.0f} |"
                for r in res["rows"] if r.get("vs_baseline")]
    met = sum(b["met"] for b in res["bars"])
    out += ["", f"## Bars: {met}/{len(res['bars'])} met", "", "| bar | met | value |", "|---|---|---:|"]
    out += [f"| {b['bar']} | {'yes' if b['met'] else '**no**'} | {b['value']:.3f} |" for b in res["bars"]]
    return "\n".join(out) + "\n"


def plot(res: dict, path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    groups = {}
    for r in res["rows"]:
        if not r["spec"].startswith("cand_") and len({x["M"] for x in res["rows"] if x["spec"] == r["spec"]}) > 1:
            groups.setdefault(r["spec"], []).append(r)
    cols = 5
    fig, axes = plt.subplots(max(1, -(-len(groups) // cols)), cols, figsize=(22, 4 * max(1, -(-len(groups) // cols))),
                             sharey=True, squeeze=False)
    for ax, (name, rs) in zip(axes.flat, sorted(groups.items())):
        ms = [r["M"] for r in rs]
        ax.plot(ms, [r["speedup_eager"] for r in rs], "o-", label="vs torch eager")
        ax.plot(ms, [r["dyn_vs_static"] and r["eager_ms"] / r["dynamic_ms"] or float("nan") for r in rs], "s--",
                label="dynamic-M vs eager")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_title(f"{name} N={rs[0]['N']} K={rs[0]['K']}", fontsize=9)
        ax.set_xlabel("M")
    axes.flat[0].set_ylabel("speedup over torch eager")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"tir-cuda fused kernels vs torch eager, {res['device']}, bf16")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def cmd_report(args):
    res = enrich(json.loads(Path(args.json).read_text()))
    dest = Path(args.dest)
    (dest / "gpu.json").write_text(json.dumps(res, indent=1) + "\n")
    (dest / "gpu.md").write_text(markdown(res))
    plot(res, dest / "gpu.png")
    print(markdown(res))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--work", default=str(REPO / "build" / "gpu_bench"))
    b.add_argument("--jobs", type=int, default=2)
    b.add_argument("--set", choices=("full", "smoke", "mid"), default="full")
    b.add_argument("--candidates", action="store_true", help="also build tiles.candidates() alternatives")
    b.add_argument("--pack", help="write specs + stripped artifacts into this .tar.xz")
    k = sub.add_parser("pack")
    k.add_argument("--work", default=str(REPO / "build" / "gpu_bench"))
    k.add_argument("--baseline", help="a work dir with the same artifacts built by another fusebuild "
                                      "(packed under base/)")
    k.add_argument("--dest", required=True)
    t = sub.add_parser("time")
    t.add_argument("--work", default=str(REPO / "build" / "gpu_bench"))
    t.add_argument("--json", required=True)
    t.add_argument("--only", help="time only the specs whose names start with one of these (comma-separated)")
    t.add_argument("--baseline", help="a work dir whose out/ holds the same artifacts built by an earlier fusebuild: "
                                      "each row also times that one, interleaved (before/after in one run)")
    t.add_argument("--compile", choices=("none", "silu", "all"), default="none",
                   help="also time torch.compile (default mode; ~10-30 s of compiling per row)")
    d = sub.add_parser("validate-dynamic")
    d.add_argument("--work", default=str(REPO / "build" / "gpu_bench"))
    d.add_argument("--json", required=True)
    r = sub.add_parser("report")
    r.add_argument("--json", required=True)
    r.add_argument("--dest", default=str(REPO / "bench" / "results"))
    args = ap.parse_args()
    cmds = {"build": cmd_build, "pack": cmd_pack, "time": cmd_time, "validate-dynamic": cmd_validate_dynamic,
            "report": cmd_report}
    sys.exit(cmds[args.cmd](args) or 0)


if __name__ == "__main__":
    main()
