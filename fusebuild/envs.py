"""Toolchain environments: one Python venv per toolchain whose pins clash with ours.

TileLang 0.1.15 pins apache-tvm-ffi<0.1.13, which breaks apache-tvm 0.27 in the same
interpreter (FACTS.md), so such a toolchain lives in its own venv under `.toolchains/`
(FUSEBUILD_TOOLCHAINS overrides the folder) and its steps run there as subprocesses.

An env is declared as data: ordered pip steps (torch first, pinned, so nothing pulls a
CUDA build of torch), and a probe that prints the versions that matter. After creation
`fusebuild-env.json` records the steps and the probed versions; those versions go into
the cache keys of every stage that runs in the env, and into reports. An env whose
recorded steps differ from the declared ones is stale and is recreated.

Create one with `fusebuild env create NAME` (`env list` shows them all). A build never
creates an env silently: a target whose env is missing reports its artifacts not-run,
with that command as the reason. Envs are declared by the backends that need them, in
their folder's env.py (fusebuild/backends/tir_cuda/env.py declares `tilelang`).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .fsutil import read_json, write_json

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = "fusebuild-env.json"


@dataclass(frozen=True)
class ToolchainEnv:
    name: str
    steps: tuple            # pip install steps, in order; each a tuple of requirement strings
    probe: str              # python code printing a JSON dict of versions
    purpose: str = ""

    @property
    def path(self) -> Path:
        return Path(os.environ.get("FUSEBUILD_TOOLCHAINS", ROOT / ".toolchains")) / self.name

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def manifest(self) -> dict | None:
        return read_json(self.path / MANIFEST)

    def ready(self) -> bool:
        m = self.manifest()
        return bool(m) and m.get("steps") == [list(s) for s in self.steps] and self.python.exists()

    def versions(self) -> dict:
        """Recorded versions (cheap: no interpreter started). Empty if not created."""
        m = self.manifest() if self.ready() else None
        return dict(m["versions"]) if m else {}

    def create(self, log=sys.stderr) -> dict:
        """(Re)create the venv, install the steps, probe and record versions."""
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "venv", str(self.path)], log)
        for step in self.steps:
            print(f"[env {self.name}] pip install {' '.join(step)}", file=log, flush=True)
            _run([str(self.python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *step], log)
        out = subprocess.run([str(self.python), "-c", self.probe], capture_output=True, text=True, check=True)
        versions = json.loads(out.stdout.strip().splitlines()[-1])
        write_json(self.path / MANIFEST, {"name": self.name, "steps": [list(s) for s in self.steps],
                                          "versions": versions, "python": out.stdout and sys.version.split()[0]})
        return versions

    def run(self, args: list, **kwargs) -> subprocess.CompletedProcess:
        """Run `python args...` inside the env, with fusebuild's repo on the path."""
        env = dict(os.environ, **kwargs.pop("env", {}))
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
        return subprocess.run([str(self.python), *args], env=env, **kwargs)


def _run(cmd, log):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stdout[-4000:], proc.stderr[-4000:], file=log)
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}")


def known() -> dict:
    """Every declared env: a backend that needs one declares it in its folder's env.py
    (`<NAME> = ToolchainEnv(...)`); importing those is cheap (no toolchain)."""
    import importlib
    import importlib.util

    from .backends import TARGETS
    envs = {}
    for info in TARGETS.values():
        module = info.module.rsplit(".", 1)[0] + ".env"
        if importlib.util.find_spec(module) is None:
            continue
        for value in vars(importlib.import_module(module)).values():
            if isinstance(value, ToolchainEnv):
                envs[value.name] = value
    return envs


def command(argv: list) -> int:
    """`python -m fusebuild env create NAME | env list`."""
    import argparse
    parser = argparse.ArgumentParser(prog="fusebuild env", description="toolchain environments")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("create", help="(re)create one env and record its versions").add_argument("name")
    sub.add_parser("list", help="declared envs, where they live, whether they are current")
    args = parser.parse_args(argv)
    envs = known()
    if args.action == "list":
        for e in envs.values():
            state = "ready " + json.dumps(e.versions()) if e.ready() else "missing or stale"
            print(f"{e.name}: {e.path}: {state}\n    {e.purpose}")
        return 0
    if args.name not in envs:
        from .errors import did_you_mean, one_of
        print(f"unknown toolchain env {args.name!r}{did_you_mean(args.name, envs)} (valid: {one_of(envs)})",
              file=sys.stderr)
        return 1
    versions = envs[args.name].create()
    print(f"{args.name}: created {envs[args.name].path}: {json.dumps(versions)}")
    return 0
