"""fusebuild's doit entry point: `doit build` renders, compiles and validates specs/*.yaml.

Kept thin on purpose: the task graph lives in fusebuild/engine/tasks.py. Nothing is
loaded here; the specs load when doit first asks for a task.
"""
from fusebuild.engine.tasks import Build

FUSEBUILD = Build.from_settings()
DOIT_CONFIG = FUSEBUILD.doit_config()
task_render, task_compile, task_assemble, task_validate, task_build = FUSEBUILD.task_creators()
