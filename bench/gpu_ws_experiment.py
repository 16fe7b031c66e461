"""Experiment: does keeping one wgmma batch in flight (wait<1>) speed up tir-cuda's GEMM core?

docs/tuning.md had found that TileLang's automatic warp specialization (T.Pipelined) drains the
tensor cores at every K step (`warpgroup_wait<0>` before a stage is released), where CUTLASS's
mainloop keeps one batch in flight. TileLang's `wg_wait` annotation is unsafe inside T.Pipelined,
so this writes the producer/consumer kernel by hand (T.tma_copy into full/empty mbarrier rings,
T.wgmma_gemm + T.wait_wgmma(1), the previous stage released after the wait) and times it against
the kernel fusebuild renders, on the same launch, in one interleaved run.

    python bench/gpu_ws_experiment.py build --base DIR --work W   # here: DIR is a built tir-cuda
        artifact of gemm_bias_silu 1024x14336x4096 (bench/gpu_bench.py build: out/bias_silu_l8b_up/
        M1024_N14336_K4096/tir-cuda); W gets DIR's copy as `fusebuild` and one folder per variant
    python bench/gpu_ws_experiment.py time --work W --json F        # on the GPU (torch only)

Variants (bf16 128-row tiles, 128 producer + 256 consumer threads, TMA loads, 232 consumer registers,
FullRow warp policy unless said; walk: `swizzle` is T.use_swizzle(10) as fusebuild's kernels,
`pairs` a 1-D grid in pairs of x tiles, panels of 8 W tiles, `cluster` the pairs as 2-CTA
clusters multicasting the W tile):
  name              block_n block_k stages wgmma wait  epilogue store   walk
  ws1_s3            224     64      3      1           staged, TMA      swizzle
  ws1_s4_r          224     64      4      1           from registers   swizzle
  ws0_s3            224     64      3      0           staged, TMA      swizzle
  ws1_k32           224     32      6      1           staged, TMA      swizzle
  ws1_256           256     64      4      1           from registers   swizzle
  ws0_pairs         224     64      3      0           staged, TMA      pairs
  ws0_mc2           224     64      3      0           staged, TMA      cluster
  ws0_mc2_s4r       224     64      4      0           from registers   cluster
  ws0_square        224     64      3      0           staged, TMA      swizzle (Square policy)
  ws0_pairs_square  224     64      3      0           staged, TMA      pairs (Square policy)
The staging tile cannot share the pipeline's memory here (TileLang allocates each buffer apart and
T.view needs equal sizes), so wait<1> costs a stage unless the epilogue stores from registers.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VARIANTS = {"ws1_s3": (224, 64, 3, 1, True), "ws1_s4_r": (224, 64, 4, 1, False), "ws0_s3": (224, 64, 3, 0, True),
            "ws1_k32": (224, 32, 6, 1, True), "ws1_256": (256, 64, 4, 1, False),
            "ws0_pairs": (224, 64, 3, 0, True, 1), "ws0_mc2": (224, 64, 3, 0, True, 2),
            "ws0_mc2_s4r": (224, 64, 4, 0, False, 2), "ws0_square": (224, 64, 3, 0, True, 0, "Square"),
            "ws0_pairs_square": (224, 64, 3, 0, True, 1, "Square")}
M, N, K = 1024, 14336, 4096


def kernel(bn, bk, stages, wait, staged, cluster=0, policy="FullRow") -> str:
    """TileLang source of one variant: bias + SiLU GEMM, y = silu(x @ w^T + bias).

    cluster 0: a 2-D grid rasterized by T.use_swizzle(10) as fusebuild's kernels are; 1: a 1-D
    grid walked in pairs of x row tiles, panels of 8 W tiles (the control for 2); 2: the same
    walk with each pair a 2-CTA cluster sharing one W tile, loaded once and multicast by TMA
    into both CTAs; a stage is released when the consumers of both CTAs are done with it (every
    consumer warp arrives on both CTAs' empty barrier)."""
    s, gx, gy, iters = stages, -(-N // bn), -(-M // 128), -(-K // bk)
    assert not (cluster and (wait or gx % 8 or gy % 2)), "clusters: drain every step, 8 | W tiles, 2 | x tiles"
    if cluster:
        launch = (f"    with T.Kernel({gx * gy}, threads=384{', cluster_dims=2' if cluster == 2 else ''}) as pid:\n"
                  f"        pair = pid // 2\n"
                  f"        bx = (pair // {4 * gy}) * 8 + pair % 8\n"
                  f"        by = ((pair % {4 * gy}) // 8) * 2 + pid % 2")
    else:
        launch = (f"    with T.Kernel({gx}, {gy}, 1, threads=384) as (bx, by, bz):\n"
                  f"        T.use_swizzle(10, order=\"row\")")
    arrivals, sync = (16, "\n        T.cluster_sync()") if cluster == 2 else (8, "")
    value = ('(C_l[i, j] + T.cast(S_bias[j], "float32")) * T.fast_rcp(T.float32(1) + '
             'T.__exp(T.float32(0) - (C_l[i, j] + T.cast(S_bias[j], "float32"))))')
    store = (f'            C_s = T.alloc_shared((128, {bn}), "bfloat16")\n            T.copy(C_l, C_s)\n'
             f'            T.copy(C_s, t_y[by * 128, bx * {bn}])' if staged else
             f'            T.copy(C_l, t_y[by * 128, bx * {bn}])')
    if wait:    # issue step k, wait for step k - 1, release k - 1's stage (lane 0 of each warp)
        release = (f"                if k > 0:\n                    T.wait_wgmma(1)\n"
                   f"                    if tx % 32 == 0:\n"
                   f"                        T.mbarrier_arrive(empty[(k + {s - 1}) % {s}])\n"
                   f"            T.wait_wgmma(0)")
    elif cluster == 2:
        release = (f"                T.wait_wgmma(0)\n                if tx % 32 == 0:\n"
                   f"                    T.ptx_arrive_cluster_barrier(empty[k % {s}], 0)\n"
                   f"                    T.ptx_arrive_cluster_barrier(empty[k % {s}], 1)")
    else:
        release = (f"                T.wait_wgmma(0)\n                if tx % 32 == 0:\n"
                   f"                    T.mbarrier_arrive(empty[k % {s}])")
    ks, st = f"k * {bk}:k * {bk} + {bk}", f"k % {s}"     # this step's K slice and stage
    x_tile, w_tile = f"t_x[by * 128:by * 128 + 128, {ks}]", f"t_w[bx * {bn}:bx * {bn} + {bn}, {ks}]"
    return f'''import tilelang.language as T
from tilelang.layout import make_swizzled_layout


@T.prim_func
def main(
    t_x: T.Tensor(({M}, {K}), "bfloat16"),
    t_w: T.Tensor(({N}, {K}), "bfloat16"),
    t_bias: T.Tensor(({N},), "bfloat16"),
    t_y: T.Tensor(({M}, {N}), "bfloat16"),
):
{launch}
        S_bias = T.alloc_shared(({bn},), "bfloat16")
        A_s = T.alloc_shared(({s}, 128, {bk}), "bfloat16")
        B_s = T.alloc_shared(({s}, {bn}, {bk}), "bfloat16")
        C_l = T.alloc_fragment((128, {bn}), "float32")
        T.annotate_layout({{A_s: make_swizzled_layout(A_s), B_s: make_swizzled_layout(B_s)}})
        full = T.alloc_barrier([128] * {s})
        empty = T.alloc_barrier([{arrivals}] * {s})
        tx = T.get_thread_binding()
        T.copy(t_bias[bx * {bn}], S_bias){sync}
        if tx < 128:
            T.dec_max_nreg(40)
            for k in T.serial({iters}):
                T.mbarrier_wait_parity(empty[k % {s}], ((k // {s}) & 1) ^ 1)
                T.tma_copy({x_tile}, A_s[{st}, :, :], barrier=full[{st}])
                T.tma_copy({w_tile}, B_s[{st}, :, :], barrier=full[{st}]{', cluster_mask=3' if cluster == 2 else ''})
                T.mbarrier_arrive(full[k % {s}])
        else:
            T.inc_max_nreg(232)
            T.clear(C_l)
            for k in T.serial({iters}):
                T.mbarrier_wait_parity(full[k % {s}], (k // {s}) & 1)
                T.wgmma_gemm(A_s[{st}, :, :], B_s[{st}, :, :], C_l, transpose_B=True,
                             policy=T.GemmWarpPolicy.{policy})
{release}
            for i, j in T.Parallel(128, {bn}):
                C_l[i, j] = {value}
{store}{sync}
'''


def cmd_build(args):
    sys.path.insert(0, str(REPO))
    from fusebuild.backends import get_backend
    be = get_backend("tir-cuda")
    work, base = Path(args.work), Path(args.base)
    plan = json.loads((base / "plan.json").read_text())
    if [p["shape"] for p in plan["params"]] != [[M, K], [N, K], [N], [M, N]]:
        raise SystemExit(f"{base} is not the {M}x{N}x{K} bias + SiLU artifact")
    shutil.rmtree(work, ignore_errors=True)
    (work / "fusebuild").mkdir(parents=True)
    for f in ("kernel.py", "plan.json", "kernel.cu", "kernel.json", "kernel.so"):
        shutil.copy(base / f, work / "fusebuild" / f)
    for name, v in VARIANTS.items():
        d = work / name
        d.mkdir()
        shutil.copy(base / "plan.json", d)
        (d / "kernel.py").write_text(kernel(*v))
        be.compile(d, d)
        be.assemble(d, d)
        ptxas = json.loads((d / "kernel.json").read_text())["ptxas"]
        smem = re.search(r"dynamicSmemBytes = (\d+)", (d / "kernel.cu").read_text()).group(1)
        print(name, smem, "B smem;", *ptxas)


def cmd_time(args):
    import torch
    import torch.nn.functional as F
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "bench"))
    from gpu_bench import clocks, interleaved

    from fusebuild.backends.tir_cuda.loader import Artifact
    work = Path(args.work)
    names = ["fusebuild", *(args.only or VARIANTS)]
    gen = torch.Generator(device="cuda").manual_seed(0)
    sets = []   # 8 input sets (8 x 117 MB of w: beyond L2)
    for _ in range(8):
        x = torch.randn(M, K, device="cuda", dtype=torch.bfloat16, generator=gen)
        w = torch.randn(N, K, device="cuda", dtype=torch.bfloat16, generator=gen) * K ** -0.5
        b = torch.randn(N, device="cuda", dtype=torch.bfloat16, generator=gen)
        sets.append((x, w, b, torch.empty(M, N, device="cuda", dtype=torch.bfloat16)))
    x, w, b, _ = sets[0]
    ref = F.silu(x.float() @ w.float().T + b.float())
    impls = {"torch eager": [lambda s=s: F.silu(F.linear(s[0], s[1], s[2])) for s in sets]}
    record = {"shape": [M, N, K], "variants": VARIANTS, "validation": {}}
    for name in names:
        art = Artifact(work / name / "kernel.json")
        out = sets[0][3]
        out.fill_(float("nan"))
        art(x, w, b, out)
        torch.cuda.synchronize()
        err = (out.float() - ref).abs().max().item()
        ok = bool(torch.isfinite(out).all()) and err <= 0.02 * ref.abs().max().item() + 0.02
        record["validation"][name] = {"max_abs_err": err, "ok": ok}
        print(f"{name}: max |err| {err:.4f} vs |ref| max {ref.abs().max().item():.2f}: {'pass' if ok else 'FAIL'}")
        if ok:
            impls[name] = [lambda s=s, a=art: a(s[0], s[1], s[2], s[3]) for s in sets]
    record["clocks_start"] = clocks()
    ms = interleaved(impls, rounds=args.rounds, loop_ms=20.0, graphs=True)
    record["clocks_end"] = clocks()
    record["torch"] = torch.__version__
    record["ms"] = ms
    eager = ms["torch eager"]
    for name, t in ms.items():
        print(f"{name:12s} {t * 1e3:8.1f} us  {2 * M * N * K / t / 1e9:6.1f} TFLOP/s  "
              f"eager/this {eager / t:.3f}  fusebuild/this {ms.get('fusebuild', float('nan')) / t:.3f}")
    print("clocks", record["clocks_start"], "->", record["clocks_end"])
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--base", required=True)
    b.add_argument("--work", required=True)
    t = sub.add_parser("time")
    t.add_argument("--work", required=True)
    t.add_argument("--json")
    t.add_argument("--rounds", type=int, default=25)
    t.add_argument("--only", nargs="*", help="these variants (and fusebuild's kernel) only")
    args = ap.parse_args()
    {"build": cmd_build, "time": cmd_time}[args.cmd](args)


if __name__ == "__main__":
    main()
