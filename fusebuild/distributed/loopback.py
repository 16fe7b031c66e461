"""A throwaway Dask cluster on loopback: one `dask scheduler` and `dask worker` processes,
for tests, the benchmark, and trying distributed builds by hand.

    with Loopback(tmp_dir, remote_cache_url) as lc:
        lc.worker("w1", resources={"tilelang": 1})
        lc.worker("w2")
        env["FUSEBUILD_SCHEDULER"] = lc.address
        ...
        lc.kill("w1")              # SIGKILL, as a crashed machine

Each worker is a separate process with its own working folder, temp folder and local
cache (FUSEBUILD_CACHE_DIR) under `folder/<name>/`: nothing is shared with the coordinator
but the remote cache (its URL comes from the worker's environment). Workers run without a
nanny (a killed worker stays dead) and with one thread unless told otherwise. Everything
binds 127.0.0.1; every process is ended by `stop()` (its own process group).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class Loopback:
    def __init__(self, folder, remote_cache: str, env=None, python: str = sys.executable):
        self.folder = Path(folder).resolve()
        self.remote_cache, self.python = remote_cache, python
        self.env = dict(os.environ if env is None else env)
        self.procs = {}                     # name -> Popen ("scheduler" included)
        self.address = None

    def start(self, timeout: float = 60):
        self.folder.mkdir(parents=True, exist_ok=True)
        info = self.folder / "scheduler.json"
        info.unlink(missing_ok=True)
        self._spawn("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                  "--scheduler-file", str(info)], self.folder, self.env)
        deadline = time.monotonic() + timeout
        while not info.exists():
            self._alive("scheduler", deadline)
        self.address = json.loads(info.read_text())["address"]
        return self

    def worker(self, name: str, resources: dict | None = None, nthreads: int = 1, env: dict | None = None,
               wait: bool = True, timeout: float = 120):
        """Start a worker named `name` offering `resources`; wait until the scheduler lists it."""
        home = self.folder / name
        for sub in ("cwd", "tmp", "cache"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        wenv = dict(self.env, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), self.env.get("PYTHONPATH")])),
                    FUSEBUILD_REMOTE_CACHE=self.remote_cache, FUSEBUILD_CACHE_DIR=str(home / "cache"),
                    TMPDIR=str(home / "tmp"), **(env or {}))
        args = ["worker", self.address, "--name", name, "--nthreads", str(nthreads), "--no-nanny", "--no-dashboard",
                "--local-directory", str(home / "tmp")]
        if resources:
            args += ["--resources", " ".join(f"{k}={v}" for k, v in resources.items())]
        self._spawn(name, args, home / "cwd", wenv)
        if wait:
            self.wait_for(name, timeout)
        return home

    def wait_for(self, name: str, timeout: float = 120):
        from distributed import Client
        deadline = time.monotonic() + timeout
        with Client(self.address, timeout=timeout, set_as_default=False) as c:
            while name not in {str(w.get("name")) for w in c.scheduler_info(n_workers=-1)["workers"].values()}:
                self._alive(name, deadline)

    def kill(self, name: str, sig=signal.SIGKILL):
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=30)

    def stop(self):
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=15)

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _spawn(self, name, args, cwd, env):
        cwd.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"{name}.log", "w") as log:
            self.procs[name] = subprocess.Popen([self.python, "-m", "dask", *args], cwd=cwd, env=env, stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True)

    def _alive(self, name, deadline):
        if self.procs[name].poll() is not None:
            raise RuntimeError(f"dask {name} exited:\n{self.log(name)[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"dask {name} did not come up in time:\n{self.log(name)[-3000:]}")
        time.sleep(0.2)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
