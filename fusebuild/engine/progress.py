"""The build's console reporter: why, progress, summary, report; per-task DB commits.

Output modes (FUSEBUILD_PROGRESS=auto|tty|plain|quiet; auto: tty on a terminal, else plain):
  plain   one line per task, doit-compatible prefixes, for CI logs:
            `.  compile:gemm/M1_N512_K512/tir-cpu  [3/20] toolchain: versions.apache-tvm ...`
            `-- render:gemm/...` (up to date)
  tty     the same line for each task that runs (up-to-date tasks are not listed) and a
          live bottom line: `[n/N] 2 running: compile:... 3.1s | 14.2s`, redrawn 4x a second
  quiet   nothing per task; failures, the artifacts that did not pass, one total line
N counts the tasks (with actions) the selected targets need; n the ones finished or found
up to date. Then: the summary table (summary.py), a note if out/ holds orphans, the total
line, and out/report.md|html (buildreport). Each task's DB record is committed as the
task finishes (depdb), so a killed build keeps what it finished.
"""
from __future__ import annotations

import inspect
import shutil
import threading
import time

from doit.cmd_base import tasks_and_deps_iter
from doit.globals import Globals
from doit.reporter import ConsoleReporter

from .. import settings
from ..cache import report as cache_report
from ..fsutil import write_json
from ..tables import clip
from . import buildreport, depdb, faults, orphans
from .summary import SummaryReporter
from .why import explain

MODES = ("auto", "tty", "plain", "quiet")


class EngineReporter(SummaryReporter):
    desc = "fusebuild: why, progress, summary, report"
    build = None                          # the engine.tasks.Build this reporter reports on

    @classmethod
    def bound_to(cls, build) -> type:
        """A reporter class for one build (doit instantiates the class it is given)."""
        return type(cls.__name__, (cls,), {"build": build, "out": build.project.out})

    def __init__(self, outstream, options):
        super().__init__(outstream, options)
        mode = settings.get("FUSEBUILD_PROGRESS")
        if mode not in MODES:
            mode = "auto"
        if mode == "auto":
            mode = "tty" if getattr(outstream, "isatty", lambda: False)() else "plain"
        self.mode = mode
        self.dm = Globals.dep_manager
        depdb.prepare(self.dm)
        self.t0 = time.monotonic()
        self.total, self.done, self.started = 0, 0, 0
        self.running = {}                     # name -> start time
        self.ran = {}                         # name -> {"why", "seconds", "ok"}
        self.failed_msgs = []
        self._lock = threading.Lock()
        self._ticker = None
        self._stop = threading.Event()
        self._status_shown = False

    # --- doit's reporter interface ----------------------------------------------------
    def initialize(self, tasks, selected_tasks):
        from .tasks import share_cores
        super().initialize(tasks, selected_tasks)
        share_cores(_num_process())          # before doit -n starts its workers
        try:
            self.total = sum(1 for t in tasks_and_deps_iter(tasks, selected_tasks) if t.actions)
        except KeyError:
            self.total = 0

    def execute_task(self, task):
        self._note(task, ran=True)
        if not task.actions or task.name.startswith("_"):
            return
        try:
            why = explain(task, self.dm)
        except Exception as err:                # explaining must never break a build
            why = f"(why unknown: {type(err).__name__}: {err})"
        with self._lock:
            self.started += 1
            self.running[task.name] = time.monotonic()
            self.ran[task.name] = {"why": why, "seconds": None, "ok": None}
            if self.mode != "quiet":
                self._line(f".  {task.title()}  [{self.started}/{self.total}] {why}")
        if self.mode == "tty" and self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()

    def add_success(self, task):
        depdb.commit(self.dm, task.name)
        self._finish(task, True)

    def add_failure(self, task, fail):
        depdb.commit(self.dm, task.name)
        self.record_failure(task, fail)
        self._finish(task, False)
        self.failed_msgs.append((task.name, fail.get_msg().strip().splitlines()[-1] if fail.get_msg().strip() else
                                 fail.get_name()))
        with self._lock:
            self._clear_status()
            ConsoleReporter.add_failure(self, task, fail)
            self._draw_status()

    def skip_uptodate(self, task):
        self._note(task, ran=False)
        with self._lock:
            if task.actions:
                self.done += 1
            if self.mode == "plain" and not task.name.startswith("_"):
                self.write(f"-- {task.title()}\n")
            self._draw_status()

    def skip_ignore(self, task):
        with self._lock:
            self._clear_status()
            ConsoleReporter.skip_ignore(self, task)

    def complete_run(self):
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=1)
        with self._lock:
            self._clear_status()
        self._failed_task_output()
        reports = self.run_reports()
        if self.mode == "quiet":
            shown = [r for r in reports if r.get("status") != "pass"]
            if shown or self._bad_specs:
                self.write_summary(shown)
        else:
            self.write_summary(reports)
        self._epilogue(reports)
        self._state_errors()

    # --- helpers ----------------------------------------------------------------------
    def _state_errors(self):
        """A DB write that failed, or a cache entry that cannot be healed, fails the run
        after its summary: one line, exit code 3 (engine/faults.py)."""
        err = depdb.error(self.dm)
        if err:
            raise faults.db_error(self.out / ".doit.db", err)
        stuck = cache_report.collect(self._ran, self._uptodate, set())["stuck"]
        if stuck:
            raise faults.cache_error(stuck)

    def _failed_task_output(self):
        """What a failed task printed (doit prints an empty banner per failure otherwise;
        the failure message itself was already shown when the task failed)."""
        for result in self.failures:
            task = result["task"]
            out = "".join(a.out or "" for a in task.actions) if task.executed else ""
            err = "".join(a.err or "" for a in task.actions) if task.executed else ""
            if out.strip() or err.strip():
                self.write("#" * 40 + f"\n{task.name} output:\n{out}{err}\n")
        if self.runtime_errors:
            self.write("#" * 40 + "\nExecution aborted.\n" + "\n".join(self.runtime_errors) + "\n")

    def _finish(self, task, ok):
        with self._lock:
            start = self.running.pop(task.name, None)
            if task.name in self.ran:
                self.ran[task.name].update(seconds=round(time.monotonic() - start, 4) if start else None, ok=ok)
            if task.actions:
                self.done += 1
            self._draw_status()

    def _line(self, text):
        self._clear_status()
        self.write(text + "\n")
        self._draw_status()

    def _status_text(self) -> str:
        now = time.monotonic()
        run = ", ".join(f"{n} {now - s:.1f}s" for n, s in list(self.running.items())[:2])
        more = f" +{len(self.running) - 2}" if len(self.running) > 2 else ""
        text = f"[{self.done}/{self.total}] {len(self.running)} running: {run}{more} | {now - self.t0:.1f}s"
        width = shutil.get_terminal_size((100, 20)).columns - 1
        return clip(text, width)

    def _draw_status(self):
        if self.mode == "tty" and not self._stop.is_set():
            self.write("\r\x1b[K" + self._status_text())
            self.outstream.flush()
            self._status_shown = True

    def _clear_status(self):
        if self._status_shown:
            self.write("\r\x1b[K")
            self._status_shown = False

    def _tick(self):
        while not self._stop.wait(0.25):
            with self._lock:
                self._draw_status()

    def _epilogue(self, reports):
        out, found, leftovers = self.out, [], []
        if self.build is not None:
            project = self.build.project
            found, leftovers = orphans.find(out, project.artifacts, orphans.protected_specs(project.errors))
        wall = time.monotonic() - self.t0
        failed = sum(1 for r in self.ran.values() if r["ok"] is False)
        run = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "wall": wall, "ran": len(self.ran),
               "up_to_date": self.done - len(self.ran), "failed": failed, "failures": self.failed_msgs,
               "orphans": [str(p) for p in found], "leftovers": [str(p) for p in leftovers]}
        note = orphans.note(found, leftovers, out)
        try:
            write_json(out / ".fusebuild" / "last_run.json", dict(run, tasks=self.ran))
            path = buildreport.write(out, reports, self.ran, run)
        except OSError as err:
            path = f"(not written: {err})"
        if note:
            self.write(note + "\n")
        self.write(f"fusebuild: {len(self.ran)} ran, {run['up_to_date']} up to date, {failed} failed, "
                   f"{wall:.2f}s; report: {path}\n")


def _num_process() -> int:
    """doit's own -n option: the runner that calls `initialize` holds it (doit is pinned)."""
    frame = inspect.currentframe()
    while frame is not None:
        runner = frame.f_locals.get("self")
        if runner is not None and hasattr(runner, "num_process") and hasattr(runner, "run_all"):
            return int(runner.num_process or 1)
        frame = frame.f_back
    return 1
