"""The doit task graph, built from specs/ (dodo.py only re-exports what is here).

Per artifact (spec, variant, target): render -> compile -> assemble -> validate, each a
doit subtask named `<stage>:<spec>/<variant>/<target>`; `build:<spec>` builds one spec;
`build` (the default) builds all. A spec that fails to load gets one failing task
`build:<file stem>` and no others; every other spec still builds.

Dispatch modes (fusebuild/modes.py): in `separate`/`compare` the render/compile/assemble
tasks are per graph node, `<stage>:<spec>/<variant>/<target>/nodes/<node>`; `reference`
has none; validate stays one task per artifact.

Up-to-date rules (doit does not rerun a task when only its action changed, so everything
that matters is in `uptodate` keys or file deps):
  render    graph digest + hints + renderer code, and the hashes of the templates the last
            render used (recorded by the render: a depfile)
  compile   the rendered files (content, via file_dep) + toolchain versions
  assemble  the object (content) + toolchain versions
  validate  the artifact (content) + seed, tolerances, torch version
A render whose text comes out byte-identical leaves the files alone, so nothing after it
reruns (early cutoff).
Every key goes through engine.keys.fresh: it stores the key's fields (so engine.why can name
the field that changed) and fingerprints the outputs (a damaged output is not current).

Environment: FUSEBUILD_SPECS (default specs), FUSEBUILD_OUT (default out), FUSEBUILD_MODE
(overrides every spec's `mode:`).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from . import modes, plan, stages
from .backends import get_backend
from .engine.keys import fresh
from .engine.progress import EngineReporter
from .errors import SpecError
from .fsutil import read_json
from .render import templates_unchanged

SPECS = Path(os.environ.get("FUSEBUILD_SPECS", "specs"))
OUT = Path(os.environ.get("FUSEBUILD_OUT", "out"))
OUT.mkdir(parents=True, exist_ok=True)  # doit opens its dependency DB there

DOIT_CONFIG = {
    "default_tasks": ["build"],
    "continue": True,                      # one bad artifact must not stop the others
    "backend": "sqlite3",                  # survives concurrent runs (dbm.dumb does not)
    "dep_file": str(OUT / ".doit.db"),
    "reporter": EngineReporter,           # why lines, [n/N], per-task DB commits, report
}



def _share_cores_between_workers(argv) -> None:
    """`doit -n N` runs N worker processes, and each kernel TVM or torch runs would
    otherwise start one thread per core: N times too many threads, which spin and stall
    each other. Give each worker its share of the cores (a user's own setting wins)."""
    jobs = 0
    for i, arg in enumerate(argv):
        if arg in ("-n", "--process") and i + 1 < len(argv) and argv[i + 1].isdigit():
            jobs = int(argv[i + 1])
        elif arg.startswith("--process=") and arg.split("=", 1)[1].isdigit():
            jobs = int(arg.split("=", 1)[1])
        elif arg.startswith("-n") and arg[2:].isdigit():
            jobs = int(arg[2:])
    if jobs > 1:
        share = str(max(1, (os.cpu_count() or 1) // jobs))
        for var in ("TVM_NUM_THREADS", "OMP_NUM_THREADS"):   # TVM kernels; torch (validation)
            os.environ.setdefault(var, share)


_share_cores_between_workers(sys.argv)
_SPECS, _ERRORS = plan.load_specs(SPECS)
try:
    ARTIFACTS = modes.apply(plan.artifacts(_SPECS, OUT))
except SpecError as err:                   # a bad FUSEBUILD_MODE: one failing task says so
    ARTIFACTS, _ERRORS = [], _ERRORS + [(Path(modes.ENV), err)]
UNITS = [u for a in ARTIFACTS for u in modes.units(a)]     # what gets rendered/compiled
_TOOLCHAINS = {}


def toolchain(target: str) -> dict:
    if target not in _TOOLCHAINS:
        _TOOLCHAINS[target] = get_backend(target).toolchain()
    return _TOOLCHAINS[target]


def _templates_unchanged(a):
    """uptodate check: the templates the last render used are still the ones it would use."""
    def check(task, values):
        return templates_unchanged(read_json(a.dir / ".stages" / "render.deps.json"))
    check.__name__ = "templates_unchanged"
    return check


def _runnable(a) -> bool:
    return toolchain(a.target)["available"]


def task_render():
    """Render each artifact's source from its spec and the target's templates."""
    for a in UNITS:
        if not _runnable(a):
            continue
        files = get_backend(a.target).source_files
        yield {"name": a.id, "actions": [(stages.render, [a])],
               "targets": [str(a.dir / f) for f in files],
               "uptodate": [fresh(plan.render_key(a), {"graph": a.variant.graph.canonical}), _templates_unchanged(a)],
               "clean": True, "doc": f"render {a.id}"}


def task_compile():
    """Compile rendered sources with the target's toolchain."""
    for a in UNITS:
        if not _runnable(a):
            continue
        backend = get_backend(a.target)
        yield {"name": a.id, "actions": [(stages.compile, [a])],
               "file_dep": [str(a.dir / f) for f in backend.source_files],
               "targets": [str(a.dir / f) for f in backend.compiled_files],
               "uptodate": [fresh(plan.toolchain_key(a, toolchain(a.target)))],
               "clean": True, "doc": f"compile {a.id}"}


def task_assemble():
    """Link/assemble compiled objects into the loadable artifact."""
    for a in UNITS:
        if not _runnable(a):
            continue
        backend = get_backend(a.target)
        yield {"name": a.id, "actions": [(stages.assemble, [a])],
               "file_dep": [str(a.dir / f) for f in backend.assemble_inputs],
               "targets": [str(a.dir / f) for f in backend.artifact_files],
               "uptodate": [fresh(plan.toolchain_key(a, toolchain(a.target)))],
               "clean": True, "doc": f"assemble {a.id}"}


def task_validate():
    """Run each artifact on seeded inputs and compare with the torch reference."""
    for a in ARTIFACTS:
        tc = toolchain(a.target)
        deps = [str(u.dir / get_backend(a.target).artifact_name) for u in modes.units(a)] if tc["available"] else []
        yield {"name": a.id, "actions": [(stages.validate, [a, tc])], "file_dep": deps,
               "targets": [str(a.report)],
               "uptodate": [fresh(dict(plan.validate_key(a, tc), available=tc["available"], reason=tc["reason"]),
                                 {"graph": a.variant.graph.canonical})],
               "clean": True, "doc": f"validate {a.id}"}


def task_build():
    """Build and validate every spec (build:<spec> for one). FUSEBUILD_MODE=fused|separate|reference|compare overrides each spec's `mode`.

    Summary table at the end; in compare mode, a per-node table per artifact with the
    first node over tolerance marked. The mode is part of each validate task's key:
    switching it rebuilds what that mode needs and revalidates.
    """
    by_spec = {}
    for a in ARTIFACTS:
        by_spec.setdefault(a.variant.spec, []).append(f"validate:{a.id}")
    for spec, deps in by_spec.items():
        yield {"name": spec, "actions": None, "task_dep": deps, "doc": f"build spec {spec}"}
    for path, err in _ERRORS:
        yield {"name": Path(path).stem, "actions": [(stages.spec_error, [path, err])],
               "uptodate": [False], "doc": f"{path}: does not load"}
