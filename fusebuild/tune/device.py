"""Which device a tuning record belongs to, and what the device was doing while measured.

A target runs on one kind of device (KIND). Its name in a records key:
  cpu    the host CPU: `<model name>, <n> cores` (the cores this process may use). The
         toolchain versions of the CPU targets also carry toolchains.cpu_key() (model and
         vector flags), so a VM reporting a generic model name is still told apart.
  cuda   the GPU the artifact is measured on (`NVIDIA H200`). A build machine without a
         GPU cross-builds tir-cuda: it uses the records of FUSEBUILD_TUNE_GPU (default: the
         local GPU if there is one, else the setting's default).
Names are read cheaply (/proc, /sys; no torch), because every build asks.

Snapshots (`snapshot(kind)`) are taken around each measurement round: CPU MHz (each core,
/proc/cpuinfo) and load average; GPU SM and memory clocks, power draw and limit,
temperature (nvidia-smi). They go into every record.
"""
from __future__ import annotations

import functools
import os
import platform
import re
import subprocess
from pathlib import Path

from .. import settings

KIND = {"tir-cpu": "cpu", "mlir-cpu": "cpu", "tir-cuda": "cuda", "mlir-aie": "npu"}
GPU_SETTING = "FUSEBUILD_TUNE_GPU"


def kind(target: str) -> str | None:
    return KIND.get(target)


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@functools.cache
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def vector_bits() -> int:
    """Width of the CPU's widest SIMD registers, from its flags (AVX-512: 512, AVX: 256)."""
    flags = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    return 512 if "avx512f" in flags else 256 if "avx" in flags else 128


def cpu_name() -> str:
    return f"{cpu_model()}, {cores()} cores"


@functools.cache
def local_gpu() -> str | None:
    """The first NVIDIA GPU's model name from the driver's /proc files (no torch import)."""
    for info in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        try:
            m = re.search(r"^Model:\s*(.+)$", info.read_text(), re.MULTILINE)
        except OSError:
            continue
        if m:
            return m.group(1).strip()
    return None


def name(target: str, env=None) -> str | None:
    """The device whose records a build of `target` uses here (None: no tuning for it)."""
    k = kind(target)
    if k == "cpu":
        return cpu_name()
    if k == "cuda":
        given = (env if env is not None else os.environ).get(GPU_SETTING, "").strip()
        return given or local_gpu() or settings.get(GPU_SETTING, env)
    return None


# --- caches and clocks --------------------------------------------------------------------

def llc_bytes() -> int:
    """Size of this CPU's last-level cache (sysfs), 32 MiB if unknown."""
    best, size = -1, 32 << 20
    for d in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            level, text = int((d / "level").read_text()), (d / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        m = re.match(r"(\d+)([KMG]?)", text)
        if m and level > best:
            best, size = level, int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]
    return size


def cpu_snapshot() -> dict:
    mhz = []
    try:
        mhz = [float(line.split(":", 1)[1]) for line in Path("/proc/cpuinfo").read_text().splitlines()
               if line.startswith("cpu MHz")]
    except (OSError, ValueError):
        pass
    try:
        load = [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        load = []
    return {"cpu_mhz": [round(x) for x in mhz], "loadavg": load}


GPU_QUERY = ("clocks.sm", "clocks.mem", "power.draw", "power.limit", "temperature.gpu")


def gpu_snapshot(index: int = 0) -> dict:
    """nvidia-smi's clocks, power and temperature of one GPU ({} if nvidia-smi is missing)."""
    try:
        out = subprocess.run(["nvidia-smi", f"--id={index}", f"--query-gpu={','.join(GPU_QUERY)}",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if out.returncode != 0 or not out.stdout.strip():
        return {}
    values = [v.strip() for v in out.stdout.strip().splitlines()[0].split(",")]
    snap = {}
    for field, v in zip(("sm_mhz", "mem_mhz", "power_w", "power_limit_w", "temp_c"), values):
        try:
            snap[field] = float(v)
        except ValueError:
            snap[field] = v
    return snap


def snapshot(device_kind: str) -> dict:
    return gpu_snapshot() if device_kind == "cuda" else cpu_snapshot()
