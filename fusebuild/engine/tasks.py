"""The doit task graph of a project (dodo.py hands doit these task creators).

Per artifact (spec, variant, target): render -> compile -> assemble -> validate, each a
doit subtask named `<stage>:<spec>/<variant>/<target>`; `build:<spec>` builds one spec;
`build` (the default) builds all. A spec that fails to load gets one failing task
`build:<file name>` (e.g. `build:good.yml`) and no others; every other spec still builds.

Dispatch modes: in `separate`/`compare` the render/compile/assemble tasks are per graph
node, `<stage>:<spec>/<variant>/<target>/nodes/<node>`; `reference` has none; validate
stays one task per artifact.

Up-to-date rules (doit does not rerun a task when only its action changed, so everything
that matters is in `uptodate` keys or file deps; plan/keys.py says what is in each):
  render    key fields + the templates the last render used (its depfile)
  compile   key fields + the rendered files (file_dep)
  assemble  key fields + the compiled files (file_dep)
  validate  key fields + the artifact (file_dep)
A render whose text comes out byte-identical leaves the files alone, so nothing after it
reruns (early cutoff). Every key goes through uptodate.fresh, which stores its fields
(so `why` can name the one that changed) and fingerprints the outputs.

Where the actions run is the executor's choice (engine/executor.py): here, or on a Dask
cluster when FUSEBUILD_SCHEDULER is set (docs/distributed.md).

Nothing happens when this module is imported: `Build` is created by dodo.py, and the
specs load when doit first asks for a task.
"""
from __future__ import annotations

import os

from ..backends.templating import templates_unchanged
from ..fsutil import read_json
from ..plan import keys
from ..plan.artifacts import needs_toolchain, units
from ..plan.project import Project, spec_task_name
from ..run import stages
from . import executor
from .faults import check_out
from .uptodate import fresh


class Build:
    """One project's task creators, doit configuration and reporter, bound together."""

    def __init__(self, project: Project, actions=executor.LOCAL):
        self.project, self.actions = project, actions

    @classmethod
    def from_settings(cls, env=None) -> "Build":
        return cls(*executor.configure(env))

    # --- doit configuration -------------------------------------------------------------
    def doit_config(self) -> dict:
        """DOIT_CONFIG for dodo.py. Creates out/ (doit opens its dependency DB there); an
        out/ that cannot hold a build stops it here with one line (engine/faults.py)."""
        from .progress import EngineReporter
        out = self.project.out
        check_out(out)
        return {
            "default_tasks": ["build"],
            "continue": True,                      # one bad artifact must not stop the others
            "backend": "sqlite3",                  # survives concurrent runs (dbm.dumb does not)
            "dep_file": str(out / ".doit.db"),
            "reporter": EngineReporter.bound_to(self),
            **self.actions.doit_config,
        }

    def task_creators(self) -> tuple:
        return self.task_render, self.task_compile, self.task_assemble, self.task_validate, self.task_build

    # --- task creators --------------------------------------------------------------------
    def _runnable(self, a) -> bool:
        return self.project.toolchain(a.target).available

    def _unit_tasks(self, stage: str, action, key, file_dep, targets, uptodate=lambda a: []):
        """One task per unit whose toolchain is here: `key(a, backend)` -> StageKey,
        `file_dep` / `targets` (backend) -> file names in the unit's folder."""
        p = self.project
        for a in p.units:
            if not self._runnable(a):
                continue
            backend = p.backend(a.target)
            k = key(a, backend)
            yield {"name": a.id, "actions": [(action, [p, a])],
                   "file_dep": [str(a.dir / f) for f in file_dep(backend)],
                   "targets": [str(a.dir / f) for f in targets(backend)],
                   "uptodate": [fresh(k.fields, k.detail), *uptodate(a)],
                   "clean": True, "doc": f"{stage} {a.id}"}

    def task_render(self):
        """Render each artifact's source from its spec and the target's templates."""
        yield from self._unit_tasks("render", self.actions.render, keys.render, lambda b: (), lambda b: b.source_files,
                                    lambda a: [_templates_unchanged(a)])

    def task_compile(self):
        """Compile rendered sources with the target's toolchain."""
        yield from self._unit_tasks("compile", self.actions.compile, self._tool_key(keys.compile),
                                    lambda b: b.source_files, lambda b: b.compiled_files)

    def task_assemble(self):
        """Link/assemble compiled objects into the loadable artifact."""
        yield from self._unit_tasks("assemble", self.actions.assemble, self._tool_key(keys.assemble),
                                    lambda b: b.assemble_inputs, lambda b: b.artifact_files)

    def _tool_key(self, stage_key):
        """keys.compile / keys.assemble with the target's toolchain filled in."""
        return lambda a, backend: stage_key(a, backend, self.project.toolchain(a.target))

    def task_validate(self):
        """Run each artifact on seeded inputs and compare with the torch reference."""
        p = self.project
        for a in p.artifacts:
            tc = p.toolchain(a.target)
            backend = p.backend(a.target) if needs_toolchain(a) else None
            deps = [str(u.dir / backend.artifact_name) for u in units(a, backend)] if tc.available else []
            key = keys.validate(a, backend, tc)
            yield {"name": a.id, "actions": [(self.actions.validate, [p, a])], "file_dep": deps,
                   "targets": [str(a.report)], "uptodate": [fresh(key.fields, key.detail)],
                   "clean": True, "doc": f"validate {a.id}"}

    def task_build(self):
        """Build and validate every spec (build:<spec> for one). FUSEBUILD_MODE=fused|separate|reference|compare overrides each spec's `mode`; FUSEBUILD_SCHEDULER=tcp://host:8786 runs each task on a Dask cluster.

        Summary table at the end; in compare mode, a per-node table per artifact with the
        first node over tolerance marked. The mode is part of each validate task's key:
        switching it rebuilds what that mode needs and revalidates. With FUSEBUILD_SCHEDULER
        every task's action runs on that cluster's workers, placed by the resources they
        offer, its data moving through FUSEBUILD_REMOTE_CACHE (docs/distributed.md). Every
        FUSEBUILD_* setting is listed by `fusebuild --help`.
        (The first line is long on purpose: `doit list` and `doit help build` show only that line.)
        """  # noqa: E501
        by_spec = {}
        for a in self.project.artifacts:
            by_spec.setdefault(a.variant.spec, []).append(f"validate:{a.id}")
        for spec, deps in by_spec.items():
            yield {"name": spec, "actions": None, "task_dep": deps, "doc": f"build spec {spec}"}
        for path, err in self.project.errors:
            yield {"name": spec_task_name(path), "actions": [(stages.spec_error, [path, err])],
                   "uptodate": [False], "doc": f"{spec_task_name(path)}: does not load"}


def _templates_unchanged(a):
    """uptodate check: the templates the last render used are still the ones it would use."""
    def check(task, values):
        return templates_unchanged(read_json(a.dir / ".stages" / "render.deps.json"))
    check.__name__ = "templates_unchanged"
    return check


def share_cores(num_process: int, env=os.environ) -> None:
    """`doit -n N` runs N worker processes, and each kernel TVM or torch runs would
    otherwise start one thread per core: N times too many threads, which spin and stall
    each other. Give each worker its share of the cores (a user's own setting wins).
    Called by the reporter with doit's own option, before the workers start."""
    if num_process > 1:
        share = str(max(1, (os.cpu_count() or 1) // num_process))
        for var in ("TVM_NUM_THREADS", "OMP_NUM_THREADS"):   # TVM kernels; torch (validation)
            env.setdefault(var, share)
