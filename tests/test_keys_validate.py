"""The validate key covers the code that runs and judges an artifact (issue 15, item 3).

A copy of fusebuild is built once; then each file that runs an artifact gets a real bug
planted (host packing in runtime/call.py, layouts.py's offsets, tir-cpu's run(), the
reference in run/validate.py) or, for backends/base.py (its host buffers serve the
emulated target only), a comment. After each edit, validate must rerun in the built tree
(and fail, for a bug), and a fresh checkout sharing the now warm cache must get the same
verdict from a cache miss, never the pass stored before the edit. Reverting passes again.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, DoitResult

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SPEC = """\
name: keyed
params: {M: [8], N: 16, K: 32}
inputs:
  x: {shape: [M, K], dtype: float32}
  w: {shape: [N, K], dtype: float32, layout: {tiled: [4, 8]}}
  b: {shape: [N], dtype: float32}
graph:
  - {op: matmul, inputs: [x, w], output: y, transpose_b: true, epilogue: [{add: b}, silu]}
outputs: [y]
targets: [tir-cpu]
"""
ARTIFACT = "out/keyed/M8_N16_K32/tir-cpu"

# file -> (text, edit, planted bug?): a bug changes what validation sees (never what is
# rendered); a comment only changes the code, so only the key can notice it
EDITS = {
    "runtime/call.py": ("    flat[index] = t.reshape(-1)\n", "    flat[index] = t.reshape(-1).flip(0)\n", True),
    "ir/layouts.py": ("        return total.reshape(-1)\n", "        return total.reshape(-1).flip(0)\n", True),
    "backends/tir_cpu/backend.py": ("        return run(self.name, build_dir, graph, inputs)\n",
                                    "        return {k: x * 1.001 for k, x in "
                                    "run(self.name, build_dir, graph, inputs).items()}\n",
                                    True),
    "run/validate.py": ("            values[node.output] = out\n",
                        "            values[node.output] = out * 1.001\n", True),
    "backends/base.py": ('"""What every backend implements', '# edited\n"""What every backend implements', False),
}


def checkout(root: Path) -> Path:
    """A copy of fusebuild with a project in it (its own code, templates and dodo.py)."""
    shutil.copytree(REPO / "fusebuild", root / "fusebuild", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "templates", root / "templates")
    shutil.copy(REPO / "dodo.py", root / "dodo.py")
    (root / "specs").mkdir()
    (root / "specs/keyed.yaml").write_text(SPEC)
    return root


def doit(root: Path, code: Path, cache: Path) -> DoitResult:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUSEBUILD_")}
    env.update(PYTHONPATH=str(code), FUSEBUILD_CACHE_DIR=str(cache), FUSEBUILD_PROGRESS="plain")
    return DoitResult(subprocess.run([sys.executable, "-m", "doit", "build"], cwd=root, env=env, capture_output=True,
                                     text=True, timeout=600, check=False))


def status(root: Path) -> str:
    return json.loads((root / ARTIFACT / "validation.json").read_text())["status"]


def cache_outcome(root: Path):
    """validate's cache outcome (a hit always records one; a failed validation records none)."""
    path = root / ARTIFACT / ".stages/validate.cache.json"
    return json.loads(path.read_text())["outcome"] if path.is_file() else None


def test_editing_the_code_that_runs_an_artifact_reruns_validate(tmp_path):
    code, cache = checkout(tmp_path / "built"), tmp_path / "cache"
    first = doit(code, code, cache)
    assert first.code == 0 and status(code) == "pass", first.text
    for i, (rel, (old, new, bug)) in enumerate(EDITS.items()):
        path = code / "fusebuild" / rel
        text = path.read_text()
        assert text.count(old) == 1, f"{rel} changed: re-plant the edit"
        path.write_text(text.replace(old, new))
        try:
            # first another checkout, with the cache warm from before the edit: a miss, never that pass
            fresh = tmp_path / f"fresh{i}"
            (fresh / "specs").mkdir(parents=True)
            shutil.copy(code / "dodo.py", fresh / "dodo.py")
            shutil.copy(code / "specs/keyed.yaml", fresh / "specs/keyed.yaml")
            warm = doit(fresh, code, cache)
            assert status(fresh) == ("fail" if bug else "pass"), (rel, warm.text)
            assert cache_outcome(fresh) not in ("local-hit", "remote-hit"), (rel, warm.text)
            again = doit(code, code, cache)                         # then the built tree: validate reruns
            assert "validate:keyed/M8_N16_K32/tir-cpu" in again.ran, (rel, again.text)
            assert status(code) == ("fail" if bug else "pass"), (rel, again.text)
        finally:
            path.write_text(text)
        back = doit(code, code, cache)
        assert back.code == 0 and status(code) == "pass", (rel, back.text)
