"""Where a build's task actions run: in doit's own workers (run/stages), or on a Dask cluster.

`configure(env)` -> (project, actions). Without FUSEBUILD_SCHEDULER: a Project and the
stage actions of run/stages, exactly as before. With it: a distributed ClusterProject
(fusebuild/distributed/coordinator.py), the same render/compile/assemble actions (their
tools run on workers through the project's backends; caching and the atomic moves into
out/ stay here), the cluster's validate action, and doit's thread pool for `-n N`: the
actions mostly wait on the network, and a Dask client does not survive doit's fork
(`-P process` still works: each child connects on its own).
"""
from __future__ import annotations

from types import SimpleNamespace

from .. import settings
from ..plan.project import Project
from ..run import stages

LOCAL = SimpleNamespace(render=stages.render, compile=stages.compile, assemble=stages.assemble,
                        validate=stages.validate, doit_config={})


def configure(env=None) -> tuple:
    if not settings.get("FUSEBUILD_SCHEDULER", env).strip():
        return Project.from_settings(env), LOCAL
    from ..distributed.coordinator import ClusterProject, validate
    return ClusterProject.from_settings(env), SimpleNamespace(
        render=stages.render, compile=stages.compile, assemble=stages.assemble, validate=validate,
        doit_config={"par_type": "thread"})
