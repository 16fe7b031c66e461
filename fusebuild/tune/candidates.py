"""The doit task graph of tuning candidates (fusebuild/tune/candidates_dodo.py runs it).

`CandidateBuild` builds the candidates listed in out/.tune/build.json (written by
builders.DoitBuilder): render, compile and assemble per candidate (manifest.Candidate),
by the engine's own task creators, so the stages, their keys and the artifact cache are
the ones a build uses: a second machine tuning the same problem restores candidates from
the cache instead of compiling them. There is no validation task: the measuring step
checks each candidate's numerics on the device before timing it. A stage that fails
writes `.stages/failed.json` (manifest.FAILED), which the records quote.
"""
from __future__ import annotations

import dataclasses
import functools

from doit.exceptions import TaskFailed

from ..engine.tasks import Build
from ..fsutil import read_json, write_json
from ..plan.project import Project
from .manifest import FAILED, PLAN, TUNE_DIR, Candidate

# --- the doit task graph of the candidates (fusebuild/tune/candidates_dodo.py) ------------------------

class CandidateArtifacts:
    """A project whose artifacts are the candidates listed in out/.tune/build.json (mixed
    into whichever Project class the engine builds with)."""

    @functools.cached_property
    def artifacts(self) -> list:
        plan = read_json(self.out / TUNE_DIR / PLAN) or {"candidates": []}
        variants = {(v.spec, v.name): v for s in self.specs for v in s.variants}
        out = []
        for c in plan["candidates"]:
            v = variants.get((c["spec"], c["variant"]))
            if v is not None:
                out.append(Candidate(dataclasses.replace(v, mode="fused"), c["target"], self.out, c["id"],
                                     dict(c["config"])))
        return out

    @functools.cached_property
    def units(self) -> list:
        return list(self.artifacts)


class CandidateProject(CandidateArtifacts, Project):
    pass


class CandidateBuild(Build):
    @classmethod
    def from_settings(cls, env=None) -> CandidateBuild:
        """Where the engine has an executor (engine/executor.py: a Dask cluster when
        FUSEBUILD_SCHEDULER is set), the candidates build through it, with its project class
        and its actions; otherwise here, with the stage actions of run/stages."""
        try:
            from ..engine import executor
        except ImportError:
            return cls(CandidateProject.from_settings(env))
        project, actions = executor.configure(env)
        kind = type(f"Candidate{type(project).__name__}", (CandidateArtifacts, type(project)), {})
        return cls(kind.from_settings(env), actions)

    def doit_config(self) -> dict:
        db = self.project.out / TUNE_DIR
        db.mkdir(parents=True, exist_ok=True)
        return {"default_tasks": ["candidates"], "continue": True, "backend": "sqlite3",
                "dep_file": str(db / ".doit.db"), "verbosity": 0,
                **getattr(getattr(self, "actions", None), "doit_config", {})}

    def task_creators(self) -> tuple:
        return (_guarded(self.task_render, "render"), _guarded(self.task_compile, "compile"),
                _guarded(self.task_assemble, "assemble"), self.task_candidates)

    def task_candidates(self):
        """Build every candidate listed in out/.tune/build.json (render, compile, assemble)."""
        deps = [f"assemble:{a.id}" for a in self.project.artifacts if self._runnable(a)]
        return {"actions": None, "task_dep": deps, "doc": "build the tuning candidates"}


def _guarded(creator, stage: str):
    """Task creator whose actions write FAILED when the stage fails (the records say why)."""
    def tasks():
        for t in creator():
            fn, args = t["actions"][0]
            t["actions"] = [(_record_failure, [fn, stage, *args])]
            yield t
    tasks.__name__ = creator.__name__
    tasks.__doc__ = creator.__doc__
    return tasks


def _record_failure(fn, stage, project, a):
    result = fn(project, a)
    if isinstance(result, TaskFailed):
        write_json(a.dir / FAILED, {"stage": stage, "error": str(getattr(result, "message", result))[-3000:]})
    return result
