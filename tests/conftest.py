"""Shared test helpers: a throwaway project folder and a doit runner that counts tasks, the
one "spec text -> variant -> render" helper, the one "render -> compile -> assemble ->
run -> compare with torch" helper, and golden files.

Test files mirror the package: tests/test_<package>_<module>.py tests
fusebuild/<package>/<module>.py (tests/test_<module>.py for a top-level module,
tests/test_<backend>_<module>.py for fusebuild/backends/<backend>/<module>.py).
Anything that runs real `doit` is marked `e2e`, anything slower than ~5 s also `slow`;
the quick loop is `pytest -m "not e2e and not slow" -n 2`.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "golden"
UPDATE_GOLDEN = "FUSEBUILD_UPDATE_GOLDEN"     # =1: golden tests rewrite their files, then fail

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


SWIGLU = (REPO / "specs" / "swiglu_prefill.yaml").read_text()
SWIGLU_V = "M64_E512_H2048_float32"


def small_swiglu(target: str) -> str:
    """The shipped swiglu_prefill graph, at its smaller shape only, on one target."""
    text = re.sub(r"^  M: .*$", "  M: [64]", SWIGLU, flags=re.M)
    text = re.sub(r"^  dtype: .*$", "  dtype: float32", text, flags=re.M)   # shipped: + bf16/fp16 for tir-cuda
    return re.sub(r"^targets: .*$", f"targets: [{target}]", text, flags=re.M)


def swiglu_artifact(mode: str, target="mlir-cpu", out=Path("out")):
    """The small swiglu's one artifact on `target`, in `mode` (planning only)."""
    import dataclasses

    from fusebuild.plan.artifacts import Artifact
    from fusebuild.spec import parse_spec
    v = parse_spec(small_swiglu(target), "specs/swiglu_prefill.yaml").variants[0]
    return Artifact(dataclasses.replace(v, mode=mode), target, out)


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
        # each project gets its own artifact cache (never the user's) and no remote cache; it
        # keeps FUSEBUILD_TOOLCHAINS, so its builds see the toolchain envs this process checked
        self.cache = cache or root.with_name(root.name + "-cache")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FUSEBUILD_") or k == "FUSEBUILD_TOOLCHAINS"}
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

    def fusebuild(self, *args, env=None) -> subprocess.CompletedProcess:
        """`python -m fusebuild ARGS` in the project folder."""
        return subprocess.run([sys.executable, "-m", "fusebuild", *args], cwd=self.root,
                              env=dict(self.env, **(env or {})), capture_output=True, text=True, timeout=600)

    def cache_report(self) -> dict:
        return json.loads((self.root / "out/cache-report.json").read_text())


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


def snapshot(root: Path, run_records: bool = True) -> dict:
    """{file: sha256} of every file under `root` except doit's DB; without `run_records`,
    also without what every run rewrites (out/report.*, out/cache-report.json, out/.fusebuild/)."""
    def kept(p):
        if ".doit.db" in p.name:
            return False
        return run_records or (p.name != "cache-report.json" and not p.name.startswith("report.")
                               and ".fusebuild" not in p.parts)
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and kept(p)}


# --- spec text -> variant -> render: the one helper every renderer test uses --------------

def refused(text: str, path: str = "specs/g.yaml") -> str:
    """The one-line SpecError a spec text is refused with when it loads (fails if it loads)."""
    from fusebuild.errors import SpecError
    from fusebuild.spec import parse_spec
    with pytest.raises(SpecError) as info:
        parse_spec(text, path)
    return str(info.value)


def variants(spec, target=None) -> list:
    """The variants of a spec (a path, or YAML text) that build `target` (all if None)."""
    from fusebuild.spec import load_spec, parse_spec
    s = load_spec(spec) if isinstance(spec, Path) else parse_spec(textwrap.dedent(spec), "specs/t.yaml")
    return [v for v in s.variants if target is None or target in v.targets]


def render(spec, target, index=0, hints=None):
    """Render variant `index` of `spec` (a path, YAML text, a Variant, or a bare Graph) for
    `target` with its spec hints (or `hints`): a backends.base.Rendered (files, templates)."""
    from fusebuild.backends import TARGETS, get_backend
    from fusebuild.backends.base import RenderJob
    from fusebuild.ir.graph import Graph
    if isinstance(spec, Graph):
        graph, given, names = spec, hints or {}, ("t", "v")
    else:
        v = spec if hasattr(spec, "graph") else variants(spec, target)[index]
        graph, given, names = v.graph, v.schedule.get(target, {}) if hints is None else hints, (v.spec, v.name)
    return get_backend(target).render(RenderJob(graph, TARGETS[target].hints.resolve(given), *names))


def dynamic_rows(graph, lo: int, hi: int):
    """`graph` with its GEMMs' rows (M) made dynamic over [lo, hi]: what a spec with
    `M: {dynamic: [lo, hi]}` loads into (tensors hold M = hi)."""
    import dataclasses

    weights = {n.inputs[1] for n in graph.nodes if n.op == "matmul"}
    m = graph.tensors[graph.nodes[0].inputs[0]].shape[0]
    tensors = {}
    for name, t in graph.tensors.items():
        if name not in weights and len(t.shape) == 2 and t.shape[0] == m:      # the rows of x and what follows
            t = dataclasses.replace(t, shape=(hi, t.shape[1]), symbols=("M", None))
        tensors[name] = t
    return dataclasses.replace(graph, tensors=tensors, ranges=(("M", lo, hi),))


# --- render -> compile -> assemble -> run -> compare: the one compare-with-torch helper ----

def build(folder: Path, v, target: str) -> Path:
    """Render, compile and assemble variant `v` for `target` into `folder` (no doit)."""
    from fusebuild.backends import get_backend
    backend = get_backend(target)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in render(v, target).files.items():
        (folder / name).write_text(text)
    backend.compile(folder, folder)
    backend.assemble(folder, folder)
    return folder


def run_and_compare(folder: Path, v, target: str) -> dict:
    """Run the artifact in `folder` on the variant's seeded inputs; {output: compare result}
    against the torch reference and its per-element bound (first mismatches listed)."""
    from fusebuild.backends import get_backend
    from fusebuild.run import validate as V
    inputs = V.make_inputs(v.graph, v.seed)
    exp = V.expected(v.graph, inputs)
    out = get_backend(target).run(folder, v.graph, inputs)
    return V.check_outputs(v.graph, out, exp, v.tolerance)


def check_against_torch(folder: Path, spec, target: str, index: int = 0) -> dict:
    """Build variant `index` of `spec` for `target` and assert every output matches torch."""
    v = spec if hasattr(spec, "graph") else variants(spec, target)[index]
    results = run_and_compare(build(folder, v, target), v, target)
    bad = {n: {k: r.get(k) for k in ("error", "max_abs", "bound", "ratio", "mismatches", "first_mismatches")}
           for n, r in results.items() if not r["ok"]}
    assert not bad, f"{target} {v.spec}/{v.name}: {bad}"
    return results


# --- golden files ---------------------------------------------------------------------------

def assert_golden(files: dict):
    """Each text must equal tests/golden/<rel> byte for byte ({rel: text}). With
    FUSEBUILD_UPDATE_GOLDEN=1 the files are rewritten and the test fails anyway (an update
    is never a pass)."""
    rewrote, problems = [], []
    for rel, text in files.items():
        path = GOLDEN / rel
        old = path.read_text() if path.is_file() else None
        if os.environ.get(UPDATE_GOLDEN) == "1":
            if old != text:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
                rewrote.append(f"tests/golden/{rel}")
        elif old is None:
            problems.append(f"tests/golden/{rel} is missing: create it with {UPDATE_GOLDEN}=1")
        elif old != text:
            shown = list(difflib.unified_diff(old.splitlines(), text.splitlines(), f"tests/golden/{rel}", "rendered",
                                              lineterm=""))
            problems.append(f"tests/golden/{rel} differs from the render ({UPDATE_GOLDEN}=1 rewrites it):\n"
                            + "\n".join(shown[:80]) + ("\n..." if len(shown) > 80 else ""))
    if os.environ.get(UPDATE_GOLDEN) == "1":
        pytest.fail(f"{UPDATE_GOLDEN}=1: rewrote {', '.join(rewrote) or 'nothing (all matched)'}; "
                    f"review the diff and rerun without {UPDATE_GOLDEN}")
    assert not problems, "\n".join(problems)


def assert_golden_render(spec: str, target: str, index: int, names: tuple):
    """Render variant `index` (of those building `target`) of the shipped spec `spec` and
    compare the files `names` with tests/golden/<target>/<spec>/<variant>/<name>."""
    v = variants(REPO / "specs" / f"{spec}.yaml", target)[index]
    files = render(v, target).files
    assert_golden({f"{target}/{spec}/{v.name}/{name}": files[name] for name in names})


def pytest_collection_modifyitems(config, items):
    """A test that builds through the `project` fixture runs real doit: it must say so (e2e),
    or the quick loop (-m "not e2e and not slow") would silently grow."""
    unmarked = [item.nodeid for item in items
                if "project" in getattr(item, "fixturenames", ()) and item.get_closest_marker("e2e") is None]
    if unmarked:
        raise pytest.UsageError("tests using the `project` fixture run doit and must be marked "
                                "@pytest.mark.e2e: " + ", ".join(unmarked))
