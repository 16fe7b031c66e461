"""Lower a rendered TileLang kernel to CUDA. Runs INSIDE the tilelang toolchain env, by path:

    <env>/bin/python fusebuild/backends/tir_cuda/lower.py BUILD_DIR DEST

Imports only the standard library and TileLang (never fusebuild: apache-tvm 0.27 and
TileLang's TVM fork must not meet). Reads BUILD_DIR/kernel.py (imported from the file:
TileLang's parser needs the real source) and plan.json; writes DEST/kernel.cu (device code
+ TileLang's host wrapper: `init`, `call(ptrs..., [int M,] stream)`, `get_last_error`) and
DEST/lower.json (parameters, launches, TMA descriptors, versions, seconds).

Several prim_funcs (plan.json "parts": one per M range of a dynamic-M artifact, each with one
prim_func per program step) are each lowered alone; their exports are made static and renamed,
and a generated `call` runs a part's prim_funcs in order, picking the part by M if M is dynamic.
"""
from __future__ import annotations

import importlib.util
import json
import re
import sys
import time
from pathlib import Path


def lower_one(func, target, tilelang, tvm, TLWrapper, configs: dict) -> str:
    """CUDA source (device code + TileLang's host wrapper) of one prim_func."""
    with target, tvm.transform.PassContext(config=configs):
        art = tilelang.lower(func, target=target)
    w = TLWrapper(target)
    w.assign_optimized_module(tvm.IRModule({func.attrs["global_symbol"]: func}))
    w.assign_pass_configs(configs)
    w.assign_host_module(art.host_mod)
    w.assign_device_module(art.device_mod)
    return w.wrap(art.kernel_source)


EXPORTS = ("call", "init", "get_last_error")
SMEM_LIMIT = 232448     # dynamic shared memory one CTA may take on sm_90 (227 KiB)
SIGNATURE = re.compile(r'extern "C" TL_EXPORT int call\(([^)]*)\)')


def as_part(cu: str, name: str) -> str:
    """One part's wrapper with its exports made static and renamed (`call` -> `<name>_call`, ...),
    so several parts live in one translation unit beside the dispatcher. Its kernels already
    have distinct names (TileLang names them after the prim_func)."""
    for fn in EXPORTS:
        cu = re.sub(rf'extern "C" TL_EXPORT ((?:const )?\w+\*? ){fn}\(', rf"static \1{name}_{fn}(", cu)
    # error_buf is also named inside TileLang's launch-check macro (a header): alias it per part
    decl = "static char error_buf[ERROR_BUF_SIZE];"
    if decl not in cu:
        raise SystemExit("TileLang's host wrapper changed: no error_buf declaration to rename")
    cu = cu.replace(decl, f"static char {name}_error_buf[ERROR_BUF_SIZE];\n#define error_buf {name}_error_buf")
    return cu.replace("cudaStream_t stream=cudaStreamDefault", "cudaStream_t stream") + "\n#undef error_buf\n"


def dispatcher(parts: list, signature: str, dynamic: bool) -> str:
    """`init`, `call` and `get_last_error` over the lowered prim_funcs. `call` runs a part's
    prim_funcs in order (one per program step); with a dynamic M, the part whose [lo, hi]
    holds M (argument `int M`, taken by the loader from the tensors' shapes)."""
    names = [re.sub(r"=.*$", "", a).split()[-1].lstrip("*") for a in signature.split(",")]
    args = ", ".join(names)
    sig = signature.replace("cudaStream_t stream=cudaStreamDefault", "cudaStream_t stream")
    lines = ["", "// ---- entry points (fusebuild) ----", "static const char* fb_error = \"\";",
             'extern "C" TL_EXPORT const char* get_last_error() { return fb_error; }',
             'extern "C" TL_EXPORT int init() {']
    for f in (f for p in parts for f in p["funcs"]):
        lines.append(f'  if ({f}_init() != 0) {{ fb_error = {f}_get_last_error(); return -1; }}')
    lines += ["  return 0;", "}", f'extern "C" TL_EXPORT int call({sig}) {{', "  int r = 0;"]
    for p in parts:
        steps = " ".join(f"if ((r = {f}_call({args})) != 0) {{ fb_error = {f}_get_last_error(); return r; }}"
                         for f in p["funcs"])
        lines.append(f'  if (M >= {p["lo"]} && M <= {p["hi"]}) {{ {steps} return 0; }}' if dynamic
                     else f"  {steps}")
    if dynamic:
        lo, hi = parts[0]["lo"], parts[-1]["hi"]
        lines += ["  static char msg[128];",
                  f'  snprintf(msg, sizeof msg, "M=%d is outside this artifact\'s range [{lo}, {hi}]", M);',
                  "  fb_error = msg;", "  return -1;"]
    else:
        lines.append("  return 0;")
    lines += ["}", ""]
    return "\n".join(lines)


def main(build_dir: Path, dest: Path) -> dict:
    t0 = time.time()
    import tilelang
    from tilelang import tvm
    from tilelang.jit.adapter.wrapper import TLWrapper
    from tvm.target import Target

    spec = importlib.util.spec_from_file_location("fusebuild_tilelang_kernel", build_dir / "kernel.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    plan = json.loads((build_dir / "plan.json").read_text())
    parts = plan.get("parts") or [{"name": "main", "funcs": ["main"]}]
    funcs = [f for p in parts for f in p["funcs"]]
    planned = [p["name"] for p in plan["params"]]
    target = Target({"kind": "cuda", "arch": "sm_90a"})
    sources = []
    for name in funcs:
        func = getattr(mod, name)
        names = [func.buffer_map[v].name for v in func.params]
        if names != planned:
            raise SystemExit(f"kernel parameters {names} of {name} differ from plan.json {planned}")
        sources.append(lower_one(func, target, tilelang, tvm, TLWrapper, plan.get("pass_configs", {})))
    t_lower = time.time() - t0
    signatures = [SIGNATURE.search(cu).group(1) for cu in sources]
    if funcs == ["main"]:
        cu = sources[0]
    else:
        if len(set(signatures)) != 1:
            raise SystemExit(f"the prim_funcs' host signatures differ: {signatures}")
        cu = ("\n".join(as_part(src, name) for src, name in zip(sources, funcs))
              + dispatcher(parts, signatures[0], dynamic=bool(plan.get("dynamic"))))
    (dest / "kernel.cu").write_text(cu)

    kernels = [{"name": m.group(4),
                "grid": [int(x) if x.strip().isdigit() else x.strip() for x in m.group(1).split(", ")],
                "block": [int(x) for x in m.group(2).split(",")], "dynamic_smem": int(m.group(3))}
               for m in re.finditer(r"config\.gridDim = dim3\((.*?)\);\s*config\.blockDim = dim3\(([^)]*)\);\s*"
                                    r"config\.dynamicSmemBytes = (\d+);\s*cudaLaunchKernelEx\(&config, (\w+)", cu)]
    over = [k for k in kernels if k["dynamic_smem"] > SMEM_LIMIT]
    if over:    # init() would fail on the GPU; say so here, with the launch to change
        raise SystemExit(f"shared memory over the sm_90a limit of {SMEM_LIMIT} bytes: "
                         + ", ".join(f"{k['name']} {k['dynamic_smem']}" for k in over)
                         + " (fewer stages or smaller tiles)")
    info = {"params": plan["params"], "launches": plan["launches"], "parts": plan.get("parts"),
            "dynamic": plan.get("dynamic"), "kernels": kernels, "call_signature": signatures[0],
            "tma_descriptors": re.findall(r"CUtensorMap (\w+);", cu),
            "tilelang": tilelang.__version__}
    # no timings in the file: the same source lowers to the same bytes
    (dest / "lower.json").write_text(json.dumps(info, indent=1) + "\n")
    return dict(info, lower_seconds=round(t_lower, 2))


if __name__ == "__main__":
    out = main(Path(sys.argv[1]), Path(sys.argv[2]))
    print(json.dumps({"kernels": out["kernels"], "lower_seconds": out["lower_seconds"]}))
