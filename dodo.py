"""fusebuild's doit entry point: `doit build` renders, compiles and validates specs/*.yaml.

Kept thin on purpose: the task graph lives in fusebuild/tasks.py.
"""
from fusebuild.tasks import (DOIT_CONFIG, task_assemble, task_build, task_compile,  # noqa: F401
                             task_render, task_validate)
