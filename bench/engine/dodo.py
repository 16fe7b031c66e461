"""dodo.py of the engine benchmark's generated projects: fusebuild's tasks, plus the stub
target when FUSEBUILD_BENCH_STUB=1 (registered before the specs load). The stub's code
digest is taken over fusebuild/backends (plan.backend_folder maps a target to a folder
inside fusebuild; the stub lives outside it)."""
import os

if os.environ.get("FUSEBUILD_BENCH_STUB") == "1":
    from fusebuild import backends, plan
    backends.TARGETS["stub"] = backends.TargetInfo("stub", "stub_backend", ("float32",), (), "benchmark stub")
    _folder = plan.backend_folder
    plan.backend_folder = lambda t: "backends" if t == "stub" else _folder(t)

from fusebuild.tasks import (DOIT_CONFIG, task_assemble, task_build, task_compile,  # noqa: F401,E402
                             task_render, task_validate)
