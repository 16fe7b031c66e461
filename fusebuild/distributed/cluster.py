"""The coordinator's connection to a Dask scheduler: workers, placement, bounded waits.

One `Cluster` per build (FUSEBUILD_SCHEDULER=tcp://host:8786). It connects when first
needed (a Dask `Client` per process: doit's `-P process` children make their own), reads
the scheduler's list of workers and their resources, and runs tasks:

    cluster.choose(info, "validate")   -> the resources to ask for, or None (no worker offers them)
    cluster.run(payload, need, what)   -> the worker's result (dict), or an error

Nothing waits forever. Connecting is bounded by FUSEBUILD_SCHEDULER_WAIT seconds (an
unreachable scheduler is one clear error); a stage whose resources no worker offers waits
that long for one to join, once per build, then is answered None; a submitted task whose
last capable worker leaves is cancelled after the same grace period (`NoWorker`). A worker
that dies while running a task is the scheduler's business: it retries the task on another
worker (`distributed.scheduler.allowed-failures`, 3 by default) and gives up with
KilledWorker after that, which is reported with the task's name.

Tasks are `worker.run` and one JSON string (payload.py); results are JSON strings. A task
never raises on the worker: its error comes back as text and is raised here as `TaskError`.
"""
from __future__ import annotations

import os
import threading
import time
import uuid

from .. import settings
from ..errors import FusebuildError
from . import payload as P
from . import placement

SETTING = "FUSEBUILD_SCHEDULER"


class ClusterError(FusebuildError):
    """The scheduler cannot be reached, or was lost."""


class NoWorker(FusebuildError):
    """No worker offers the resources a task needs (after the bounded wait)."""


class TaskError(FusebuildError):
    """A task failed on its worker (the worker's message)."""


class Cluster:
    def __init__(self, address: str, wait: float = 30.0):
        self.address, self.wait = address, wait
        self._client, self._pid = None, None
        self._lock = threading.Lock()
        self._workers, self._seen = {}, 0.0
        self._choices, self._choice_locks = {}, {}

    @classmethod
    def from_settings(cls, env=None) -> Cluster | None:
        address = settings.get(SETTING, env).strip()
        if not address:
            return None
        raw = settings.get("FUSEBUILD_SCHEDULER_WAIT", env)
        try:
            wait = float(raw)
        except ValueError:
            raise ClusterError(f"not a number of seconds: {raw!r}",
                               path="environment variable FUSEBUILD_SCHEDULER_WAIT",
                               valid="seconds, e.g. 30") from None
        return cls(address, wait)

    # --- connection and workers --------------------------------------------------------
    def client(self):
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                self._client, self._pid = self._connect(), os.getpid()
            return self._client

    def _connect(self):
        from distributed import Client
        try:
            return Client(self.address, timeout=self.wait, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as err:
            raise ClusterError(
                f"cannot reach the Dask scheduler at {self.address} within {self.wait:g} s "
                f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'no answer'})",
                path=f"environment variable {SETTING}",
                valid="the address of a running `dask scheduler` (tcp://host:8786); unset it to build here") from None

    def workers(self, max_age: float = 1.0) -> dict:
        """address -> {"name", "host", "resources"}, read from the scheduler at most every max_age s."""
        with self._lock:
            fresh = time.monotonic() - self._seen < max_age
        if not fresh:
            client = self.client()
            try:
                info = client.scheduler_info(n_workers=-1).get("workers")
            except Exception as err:  # noqa: BLE001  whatever Dask raises once its scheduler is gone
                raise self._lost("reading the workers", err) from None
            if info is None or client.status != "running":
                raise self._lost("reading the workers", f"client {client.status}")
            with self._lock:
                self._workers = {addr: {"name": str(w.get("name")), "host": w.get("host"),
                                        "resources": dict(w.get("resources") or {})} for addr, w in info.items()}
                self._seen = time.monotonic()
        return dict(self._workers)

    def choose(self, info, stage: str) -> dict | None:
        """The resources `stage` of target `info` asks for in this build, or None if no worker
        offers any alternative within the bounded wait. Decided once per (target, stage)."""
        key = (info.name, stage)
        with self._lock:
            lock = self._choice_locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._choices:
                self._choices[key] = self._wait_for(placement.needs(info, stage))
            return self._choices[key]

    def forget(self, info, stage: str):
        """A task found no worker at run time: later tasks of this kind are answered None."""
        self._choices[(info.name, stage)] = None

    def _wait_for(self, alternatives) -> dict | None:
        deadline = time.monotonic() + self.wait
        while True:
            found = placement.first_offered(alternatives, self.workers(max_age=0.5))
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(0.5)

    # --- tasks --------------------------------------------------------------------------
    def submit(self, payload: dict, need: dict, what: str):
        from .worker import run
        key = f"fusebuild {what} {uuid.uuid4().hex[:8]}"
        client = self.client()
        try:
            return client.submit(run, P.dumps(payload), resources=need or None, pure=False, retries=0, key=key)
        except Exception as err:  # noqa: BLE001  a closed or disconnected client
            raise self._lost(what, err) from None

    def _lost(self, what: str, err) -> ClusterError:
        why = f"{type(err).__name__}: {err}" if isinstance(err, BaseException) else err
        return ClusterError(f"{what}: lost the Dask scheduler at {self.address} ({why})")

    def result(self, future, need: dict, what: str) -> dict:
        """Wait for a task; a worker-side error is raised as TaskError, a task no worker can
        take any more as NoWorker (after the grace period)."""
        from distributed.client import FutureCancelledError
        from distributed.scheduler import KilledWorker
        orphaned = None
        while True:
            try:
                out = P.loads(future.result(timeout=1.0))
                break
            except TimeoutError:
                pass
            except KilledWorker:
                raise TaskError(f"{what}: its workers died while running it, too many times (Dask gave up: "
                                "KilledWorker; see distributed.scheduler.allowed-failures)") from None
            except FutureCancelledError:
                raise ClusterError(f"{what}: the Dask scheduler at {self.address} lost the task") from None
            except Exception as err:  # noqa: BLE001  worker-side errors come back as data: this is the cluster
                raise self._lost(what, err) from None
            try:
                workers = self.workers()
            except ClusterError as err:
                raise ClusterError(f"{what}: {err.message}") from None
            if placement.first_offered((need,), workers) is None:
                orphaned = orphaned or time.monotonic()
                if time.monotonic() - orphaned > self.wait:
                    future.cancel()
                    raise NoWorker(f"{what}: {placement.missing((need,))} (the last one left during the build)")
            else:
                orphaned = None
        if out.get("error"):
            raise TaskError(f"{what} on {out.get('worker', '?')}: {out['error']}")
        return out

    def run(self, payload: dict, need: dict, what: str) -> dict:
        return self.result(self.submit(payload, need, what), need, what)

    def close(self):
        if self._client is not None and self._pid == os.getpid():
            self._client.close()
            self._client = None



def workers_table(cluster: Cluster, targets: dict) -> str:
    """`fusebuild workers`: each worker, its resources, and the stages of each target it
    offers what they need for (a `{}` alternative: any worker)."""
    from ..tables import table
    rows = []
    for addr, w in sorted(cluster.workers(max_age=0).items(), key=lambda item: item[1]["name"]):
        res = w["resources"]
        takes = []
        for target, info in targets.items():
            ok = [s for s in placement.STAGES if any(placement.offers(res, alt) for alt in placement.needs(info, s))]
            takes.append(f"{target}: {'all' if len(ok) == len(placement.STAGES) else ', '.join(ok) or '-'}")
        rows.append([w["name"], addr, " ".join(f"{k}={v:g}" for k, v in sorted(res.items())) or "-", "; ".join(takes)])
    if not rows:
        return f"no workers at {cluster.address}"
    return table(["worker", "address", "resources", "stages it can run"], rows)
