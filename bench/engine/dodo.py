"""dodo.py of the engine benchmark's generated projects: fusebuild's tasks, plus the stub
target when FUSEBUILD_BENCH_STUB=1 (an extra entry of the project's target table)."""
import os

from fusebuild.backends import TARGETS, TargetInfo
from fusebuild.engine.tasks import Build
from fusebuild.plan.project import Project

targets = dict(TARGETS)
if os.environ.get("FUSEBUILD_BENCH_STUB") == "1":
    targets["stub"] = TargetInfo("stub", "stub_backend", ("float32",), description="benchmark stub")

FUSEBUILD = Build(Project.from_settings(targets=targets))
DOIT_CONFIG = FUSEBUILD.doit_config()
task_render, task_compile, task_assemble, task_validate, task_build = FUSEBUILD.task_creators()
