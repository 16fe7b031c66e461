"""Every FUSEBUILD_* setting: one table (name, default, meaning), read when asked for.

Nothing reads the environment at import time: a project, the cache and the reporter
ask `get(name)` when they are built, so a test or a tool can pass its own environment.
`fusebuild --help` and the README print this table.
"""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    meaning: str


SETTINGS = {s.name: s for s in [
    Setting("FUSEBUILD_SPECS", "specs", "folder of spec files (*.yaml, *.yml) a build reads"),
    Setting("FUSEBUILD_OUT", "out", "build output folder (artifacts, reports, doit's DB)"),
    Setting("FUSEBUILD_MODE", "", "dispatch mode for every spec: fused | separate | reference | compare"),
    Setting("FUSEBUILD_PROGRESS", "auto", "console output: auto | tty | plain | quiet"),
    Setting("FUSEBUILD_CACHE", "on", "off: no artifact cache (local or remote)"),
    Setting("FUSEBUILD_CACHE_DIR", "~/.cache/fusebuild", "local artifact cache (shared by every checkout)"),
    Setting("FUSEBUILD_REMOTE_CACHE", "", "http(s)://host:port/prefix of a Bazel-protocol remote cache"),
    Setting("FUSEBUILD_REMOTE_CACHE_READONLY", "", "1: read the remote cache, never upload (pull requests)"),
    Setting("FUSEBUILD_REMOTE_CACHE_HEADER", "", "one 'Name: value' header sent to the remote cache (auth)"),
    Setting("FUSEBUILD_REMOTE_CACHE_TIMEOUT", "5", "seconds per remote cache request (status, headers and body)"),
    Setting("FUSEBUILD_REMOTE_CACHE_MAX_BLOB", str(256 << 20), "bytes: the largest blob read from the remote cache"),
    Setting("FUSEBUILD_TEMPLATE_OVERRIDES", "", "template folders searched before templates/ (os.pathsep list)"),
    Setting("FUSEBUILD_TOOLCHAINS", ".toolchains", "folder of toolchain envs (`fusebuild env create NAME`)"),
    Setting("FUSEBUILD_SCHEDULER", "", "tcp://host:8786 of a Dask scheduler: run each task's action on its workers "
            "(needs FUSEBUILD_REMOTE_CACHE; docs/distributed.md)"),
    Setting("FUSEBUILD_SCHEDULER_WAIT", "30", "seconds to wait for the scheduler, or for a worker with a resource "
            "a task needs, before saying so"),
    Setting("FUSEBUILD_TUNING", "tuning/records.jsonl", "tuning records a build takes its winners from and "
            "`fusebuild tune` appends to; off: builds use no tuned schedules (docs/tuning.md)"),
    Setting("FUSEBUILD_TUNE_GPU", "NVIDIA H200", "GPU whose tuning records tir-cuda builds use when set; "
            "unset: the local GPU, else this default"),
]}


def get(name: str, env=None) -> str:
    """The setting's value in `env` (default os.environ), else its default."""
    env = os.environ if env is None else env
    value = env.get(name, "")
    return value if value.strip() else SETTINGS[name].default


def table() -> str:
    """The settings as aligned text lines (for --help)."""
    width = max(len(n) for n in SETTINGS)
    return "\n".join(f"  {s.name:<{width}}  {s.meaning} (default: {s.default or 'unset'})"
                     for s in SETTINGS.values())
