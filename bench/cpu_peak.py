"""This CPU's fp32 peak: from its flags and frequency (stated assumptions), and measured.

    python bench/cpu_peak.py          # prints both as JSON

Formula: cores x FMA units per core x fp32 lanes per vector x 2 flops per FMA x clock.
  cores      the cores this process may run on (sched_getaffinity)
  lanes      16 with avx512f, 8 with avx2/fma, else 4 (/proc/cpuinfo flags)
  FMA units  NOT in the flags: an assumption by model name (FMA_UNITS below; Intel server
             cores with AVX-512 (Skylake-SP and later: Xeon Gold/Platinum, Sapphire/Emerald/
             Granite Rapids) have two 512-bit FMA ports; AMD Zen 4 runs 512-bit FMAs on 256-bit
             halves (one per cycle), Zen 5 server cores have two full 512-bit units). A VM that
             reports a generic "Intel(R) Xeon(R) Processor" with AMX and avx512_fp16 is a
             Sapphire Rapids or later server core: 2.
  clock      /proc/cpuinfo "cpu MHz" (a VM often reports only the nominal TSC rate; the cores
             may turbo above it, which is why the measured peak is reported too)
Measured: a C loop of 12 independent AVX-512 (or AVX2) FMA chains, one thread per core, no
memory traffic (gcc -O2 -march=native); its GFLOP/s is what this CPU sustains right now,
at whatever clock it runs (and however loaded the machine is: record the load with it).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FMA_UNITS = [  # (regex over the model name, FMA units per core, why)
    (r"EPYC 9\d\d5|Zen ?5", 2, "AMD Zen 5 server core: two 512-bit FMA units"),
    (r"EPYC 9\d\d4|Zen ?4", 1, "AMD Zen 4: 512-bit FMAs issued on 256-bit halves, one per cycle"),
    (r"Xeon", 2, "Intel Xeon server core with AVX-512: two 512-bit FMA ports (0 and 5)"),
]

LOOP = r"""
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef __AVX512F__
typedef __m512 V;
#define LANES 16
#define FMA(a) a = _mm512_fmadd_ps(a, b, c)
#define SET(x) _mm512_set1_ps(x)
static float first(V v) { return _mm512_reduce_add_ps(v); }
#else
typedef __m256 V;
#define LANES 8
#define FMA(a) a = _mm256_fmadd_ps(a, b, c)
#define SET(x) _mm256_set1_ps(x)
static float first(V v) { float o[8]; _mm256_storeu_ps(o, v); return o[0]; }
#endif
int main(int argc, char **argv) {
  long iters = atol(argv[1]);
  double t0 = omp_get_wtime();
  float sink = 0;
  #pragma omp parallel reduction(+:sink)
  {
    /* 12 independent chains in named registers: enough to cover 4-cycle FMA latency on 2 ports */
    V b = SET(1.0000001f), c = SET(1e-7f);
    V a0 = SET(0), a1 = SET(1), a2 = SET(2), a3 = SET(3), a4 = SET(4), a5 = SET(5);
    V a6 = SET(6), a7 = SET(7), a8 = SET(8), a9 = SET(9), a10 = SET(10), a11 = SET(11);
    for (long n = 0; n < iters; n++) {
      FMA(a0); FMA(a1); FMA(a2); FMA(a3); FMA(a4); FMA(a5);
      FMA(a6); FMA(a7); FMA(a8); FMA(a9); FMA(a10); FMA(a11);
    }
    sink += first(a0) + first(a1) + first(a2) + first(a3) + first(a4) + first(a5)
          + first(a6) + first(a7) + first(a8) + first(a9) + first(a10) + first(a11);
  }
  double t = omp_get_wtime() - t0;
  double flops = (double)iters * 12 * LANES * 2 * omp_get_max_threads();
  printf("{\"gflops\": %.2f, \"seconds\": %.4f, \"threads\": %d, \"sink\": \"%g\"}\n", flops / t / 1e9, t,
         omp_get_max_threads(), sink);
  return 0;
}
"""


def cpuinfo() -> dict:
    text = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    flags = re.search(r"^flags\s*:\s*(.+)$", text, re.MULTILINE)
    mhz = [float(x) for x in re.findall(r"^cpu MHz\s*:\s*([\d.]+)$", text, re.MULTILINE)]
    return {"model": model.group(1).strip() if model else "?", "flags": set(flags.group(1).split()) if flags else set(),
            "mhz": max(mhz) if mhz else None}


def formula() -> dict:
    info = cpuinfo()
    cores = len(os.sched_getaffinity(0))
    lanes = 16 if "avx512f" in info["flags"] else 8 if "fma" in info["flags"] else 4
    units, why = next(((u, w) for pat, u, w in FMA_UNITS if re.search(pat, info["model"])),
                      (1, "unknown model: one FMA unit assumed"))
    ghz = (info["mhz"] or 0) / 1e3
    return {"model": info["model"], "cores": cores, "fp32_lanes": lanes, "fma_units_per_core": units,
            "fma_units_assumption": why, "clock_ghz": ghz, "clock_source": "/proc/cpuinfo cpu MHz",
            "peak_gflops": round(cores * units * lanes * 2 * ghz, 1),
            "formula": f"{cores} cores x {units} FMA x {lanes} lanes x 2 flops x {ghz:.2f} GHz"}


def measured(seconds: float = 1.0) -> dict:
    """The FMA loop's GFLOP/s with one thread per core (None if no C compiler)."""
    with tempfile.TemporaryDirectory() as d:
        src, exe = Path(d) / "fma.c", Path(d) / "fma"
        src.write_text(LOOP)
        build = subprocess.run(["gcc", "-O2", "-march=native", "-fopenmp", str(src), "-o", str(exe)],
                               capture_output=True, text=True, check=False)
        if build.returncode != 0:
            return {"error": build.stderr[-500:]}
        env = dict(os.environ, OMP_NUM_THREADS=str(len(os.sched_getaffinity(0))))
        def run(iters):
            return json.loads(subprocess.run([str(exe), str(iters)], capture_output=True, text=True, env=env,
                                             check=False).stdout)
        iters = 1 << 20
        while True:                                    # long enough to be timed
            out = run(iters)
            if out["seconds"] >= seconds or iters > 1 << 34:
                break
            iters *= 2
        best = out
        for _ in range(2):
            out = run(iters)
            best = max(best, out, key=lambda r: r["gflops"])
    return {"gflops": best["gflops"], "threads": best["threads"], "loadavg": os.getloadavg(),
            "method": ("12 independent FMA chains in registers (zmm, else ymm), best of 3, "
                       "gcc -O2 -march=native -fopenmp"),
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def peak() -> dict:
    return {"formula": formula(), "measured": measured()}


if __name__ == "__main__":
    json.dump(peak(), sys.stdout, indent=1)
    print()
