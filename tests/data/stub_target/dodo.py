"""dodo.py of a project with one more target: the registry's table plus the stub's entry."""
from fusebuild.backends import TARGETS, TargetInfo
from fusebuild.engine.tasks import Build
from fusebuild.plan.project import Project
from stub.hints import HINTS

targets = dict(TARGETS, stub=TargetInfo("stub", "stub.backend", ("float32",), HINTS, "torch code, for the recipe"))

FUSEBUILD = Build(Project.from_settings(targets=targets))
DOIT_CONFIG = FUSEBUILD.doit_config()
task_render, task_compile, task_assemble, task_validate, task_build = FUSEBUILD.task_creators()
