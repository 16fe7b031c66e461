"""The build step of tuning, pluggable: how a batch of candidates gets rendered, compiled
and assembled.

  doit     (default) `doit -n JOBS` over the candidates' task graph (candidates.py, run as
           `doit -f fusebuild/tune/candidates_dodo.py`): the engine's own task creators, stage
           keys and artifact cache. Where the engine has an executor (engine/executor.py of
           the scale-out work: a Dask cluster when FUSEBUILD_SCHEDULER is set), the candidate
           graph takes its project class and actions, so candidates are placed like any task.
  inline   the stage functions one after another in this process (no doit; for debugging
           a candidate, and where a subprocess cannot be started)
A builder only builds: each candidate ends with its artifact in its folder, or with
`.stages/failed.json` saying which stage failed and why (manifest.failure).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from ..fsutil import write_json
from .manifest import FAILED, PLAN, TUNE_DIR

STARTED = re.compile(r"^\.  compile:\S+/tune/(\w+)$")
# not "dodo.py": doit imports the file by its name, with the project's folder first on sys.path
DODO = Path(__file__).resolve().parent / "candidates_dodo.py"


class DoitBuilder:
    name = "doit"

    def __init__(self, jobs: int = 1, env=None, timeout: float = 3600):
        self.jobs, self.env, self.timeout = max(1, jobs), env, timeout

    def build(self, project, cands: list, log=None) -> float:
        """Build `cands` (manifest.Candidate), `log`ging one line per candidate; returns the wall time."""
        start = time.perf_counter()
        if not cands:
            return 0.0
        write_json(project.out / TUNE_DIR / PLAN,
                   {"candidates": [{"spec": c.variant.spec, "variant": c.variant.name, "target": c.target,
                                    "id": c.cid, "config": c.config} for c in cands]})
        for c in cands:
            (c.dir / FAILED).unlink(missing_ok=True)
        env = dict(os.environ if self.env is None else self.env)
        share = str(max(1, (os.cpu_count() or 1) // self.jobs))
        for var in ("TVM_NUM_THREADS", "OMP_NUM_THREADS"):    # as engine.tasks.share_cores does for -n
            env.setdefault(var, share)
        cmd = [sys.executable, "-m", "doit", "-f", str(DODO), "-d", os.getcwd(), "-n", str(self.jobs),
               "candidates"]
        tail, started = [], 0
        with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
            for line in proc.stdout:             # doit prints ".  compile:<artifact>/tune/<id>" as one starts
                tail = (tail + [line])[-60:]
                m = STARTED.match(line)
                if m and log:
                    started += 1
                    log(f"  [{started}/{len(cands)}] compiling {m.group(1)}")
            rc = proc.wait(timeout=self.timeout)
        if rc not in (0, 1, 2):                  # 1, 2: a task failed, or one after it could not run
            # (each candidate's failure is in its folder); 3 and up: doit itself did not run
            raise RuntimeError(f"candidate build did not run (doit exited {rc}):\n{''.join(tail)[-3000:]}")
        return time.perf_counter() - start


class InlineBuilder:
    name = "inline"

    def __init__(self, jobs: int = 1, env=None):
        pass

    def build(self, project, cands: list, log=None) -> float:
        from doit.exceptions import TaskFailed

        from ..run import stages
        start = time.perf_counter()
        for i, c in enumerate(cands):
            (c.dir / FAILED).unlink(missing_ok=True)
            if log:
                log(f"  [{i + 1}/{len(cands)}] building {c.cid}")
            for name in ("render", "compile", "assemble"):
                result = getattr(stages, name)(project, c)
                if isinstance(result, TaskFailed):
                    error = str(getattr(result, "message", result))[-3000:]
                    write_json(c.dir / FAILED, {"stage": name, "error": error})
                    break
        return time.perf_counter() - start


BUILDERS = {"doit": DoitBuilder, "inline": InlineBuilder}
