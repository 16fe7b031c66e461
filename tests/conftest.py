"""Shared test helpers: a throwaway project folder and a doit runner that counts tasks."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

GEMM_SPEC = """\
name: {name}
params:
  M: [4, 8]
  N: 32
  K: 16
inputs:
  x: {{shape: [M, K], dtype: float32}}
  w: {{shape: [N, K], dtype: float32}}
  b: {{shape: [N], dtype: float32}}
graph:
  - {{op: matmul, inputs: [x, w], output: y, transpose_b: true, epilogue: [{{add: b}}, {act}]}}
outputs: [y]
seed: 3
"""


def gemm_spec(name="small", act="silu") -> str:
    return GEMM_SPEC.format(name=name, act=act)


def swiglu_spec(ms, E, H, name="s", schedule="") -> str:
    """The Llama MLP (gate/up, SiLU * up, down) as bench/gpu_bench.py writes it: bf16, tir-cuda."""
    sys.path.insert(0, str(REPO / "bench"))
    from gpu_bench import SWIGLU_SPEC
    return SWIGLU_SPEC.format(name=name, ms=list(ms), E=E, H=H) + schedule


class Project:
    """A folder with specs/ and a dodo.py, where `doit` runs as a user would run it."""

    def __init__(self, root: Path, cache: Path | None = None):
        self.root = root
        (root / "specs").mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "dodo.py", root / "dodo.py")
        # each project gets its own artifact cache (never the user's) and no remote cache
        self.cache = cache or root.with_name(root.name + "-cache")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FUSEBUILD_")}
        self.env = dict(env, PYTHONPATH=str(REPO), FUSEBUILD_TEMPLATE_OVERRIDES="",
                        FUSEBUILD_CACHE_DIR=str(self.cache))

    def spec(self, name: str, text: str) -> Path:
        path = self.root / "specs" / f"{name}.yaml"
        path.write_text(textwrap.dedent(text))
        return path

    def doit(self, *args, check=None, env=None):
        proc = subprocess.run([sys.executable, "-m", "doit", *args], cwd=self.root, capture_output=True, text=True,
                              env=dict(self.env, **(env or {})), timeout=600)
        result = DoitResult(proc)
        if check is not None:
            assert proc.returncode == check, result.text
        return result


class DoitResult:
    def __init__(self, proc):
        self.code = proc.returncode
        self.text = proc.stdout + proc.stderr
        # doit prints ".  task" for an executed task and "-- task" for an up-to-date one
        self.ran = re.findall(r"^\.  (\S+)", proc.stdout, re.M)
        self.skipped = re.findall(r"^-- (\S+)", proc.stdout, re.M)

    def ran_stage(self, stage: str) -> list:
        return [t for t in self.ran if t.startswith(stage + ":")]


@pytest.fixture
def project(tmp_path) -> Project:
    return Project(tmp_path)
