"""Toolchain facts that go into cache keys and reports, read cheaply.

Versions come from package metadata (no import of the toolchain), the host CPU from
/proc/cpuinfo: planning a build must not pay for importing TVM.
"""
from __future__ import annotations

import functools
import platform
from importlib import metadata


@functools.lru_cache(maxsize=None)
def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=None)
def cpu_key() -> str:
    """Host CPU model and vector features: LLVM code for one CPU may not run on another."""
    model, flags = platform.machine(), ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == platform.machine():
                    model = f"{platform.machine()} {line.split(':', 1)[1].strip()}"
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1]
                    break
    except OSError:
        pass
    vec = sorted(f for f in flags.split() if f.startswith(("avx", "fma", "amx", "sse4")))
    return f"{model} [{' '.join(vec)}]"
