"""Lower a rendered TileLang kernel to CUDA. Runs INSIDE the tilelang toolchain env, by path:

    <env>/bin/python fusebuild/backends/tir_cuda/lower.py BUILD_DIR DEST

Imports only the standard library and TileLang (never fusebuild: apache-tvm 0.27 and
TileLang's TVM fork must not meet). Reads BUILD_DIR/kernel.py (imported from the file:
TileLang's parser needs the real source) and plan.json; writes DEST/kernel.cu (device code
+ TileLang's host wrapper: `init`, `call(ptrs..., stream)`, `get_last_error`) and
DEST/lower.json (parameters, launches, TMA descriptors, versions, seconds).
"""
from __future__ import annotations

import importlib.util
import json
import re
import sys
import time
from pathlib import Path


def main(build_dir: Path, dest: Path) -> dict:
    t0 = time.time()
    import tilelang
    from tilelang import tvm
    from tilelang.jit.adapter.wrapper import TLWrapper
    from tvm.target import Target

    spec = importlib.util.spec_from_file_location("fusebuild_tilelang_kernel", build_dir / "kernel.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    func = mod.main
    plan = json.loads((build_dir / "plan.json").read_text())
    names = [func.buffer_map[v].name for v in func.params]
    planned = [p["name"] for p in plan["params"]]
    if names != planned:
        raise SystemExit(f"kernel parameters {names} differ from plan.json {planned}")

    target = Target({"kind": "cuda", "arch": "sm_90a"})
    with target, tvm.transform.PassContext(config={}):
        art = tilelang.lower(func, target=target)
    t_lower = time.time() - t0
    w = TLWrapper(target)
    w.assign_optimized_module(tvm.IRModule({func.attrs["global_symbol"]: func}))
    w.assign_pass_configs({})
    w.assign_host_module(art.host_mod)
    w.assign_device_module(art.device_mod)
    cu = w.wrap(art.kernel_source)
    (dest / "kernel.cu").write_text(cu)

    kernels = [{"name": m.group(4), "grid": [int(x) for x in m.group(1).split(",")],
                "block": [int(x) for x in m.group(2).split(",")], "dynamic_smem": int(m.group(3))}
               for m in re.finditer(r"config\.gridDim = dim3\(([^)]*)\);\s*config\.blockDim = dim3\(([^)]*)\);\s*"
                                    r"config\.dynamicSmemBytes = (\d+);\s*cudaLaunchKernelEx\(&config, (\w+)", cu)]
    sig = re.search(r'extern "C" TL_EXPORT int call\(([^)]*)\)', cu)
    info = {"params": plan["params"], "launches": plan["launches"], "kernels": kernels,
            "call_signature": sig.group(1) if sig else None,
            "tma_descriptors": re.findall(r"CUtensorMap (\w+);", cu),
            "tilelang": tilelang.__version__, "lower_seconds": round(t_lower, 2)}
    (dest / "lower.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


if __name__ == "__main__":
    out = main(Path(sys.argv[1]), Path(sys.argv[2]))
    print(json.dumps({"kernels": out["kernels"], "lower_seconds": out["lower_seconds"]}))
