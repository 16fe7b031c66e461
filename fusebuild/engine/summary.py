"""Console reporting: doit's reporter plus the summary table printed at the end of a run
(and, for artifacts validated in compare mode, their per-node tables).

The table lists every artifact the selected tasks need (engine/outcomes.py): one that
failed before validation shows `not built: <stage> failed: <reason>`, never its old
report; one validated on another device (gpu-validate) shows that device's verdict.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from doit.cmd_base import tasks_and_deps_iter
from doit.reporter import ConsoleReporter

from ..cache import report as cache_report
from ..run.devices import shown as shown_devices
from ..run.modes import step_table
from ..tables import clip, fmt, table
from .outcomes import artifact_reports, reason_line

# statuses of artifacts that a missing toolchain or device kept from running: one line per
# (target, status, reason) instead of one row per artifact
COLLAPSED = ("not-run", "built-not-validated")
WIDTH = 120


def _status_text(r) -> str:
    status = r.get("status") or "?"
    elsewhere = shown_devices(r)
    if status == "emulated":
        status = "emulated (no device run)"
    elif status == "not built":
        status = f"not built: {r.get('reason') or '?'}"
    elif status == "fail" and r.get("stage") == "validate" and r.get("reason"):
        status = f"fail: {r['reason']}"
    elif status in COLLAPSED:
        status = f"{elsewhere} (not run here)" if elsewhere else (r.get("reason") or status)
    if r.get("mode", "fused") != "fused":  # a reference-mode pass is not an artifact's
        status = f"{status} ({r['mode']})"
    if r.get("samples"):                   # a dynamic artifact: the numbers are its worst size's
        worst = ", ".join(f"{k}={v}" for k, v in r.get("worst_sample", {}).items())
        status = f"{status} ({len(r['samples'])} sizes, worst {worst})"
    return status


def summary_rows(reports) -> list:
    rows = []
    for r in reports:
        t = r.get("timings", {})
        total = sum(v for v in t.values() if isinstance(v, (int, float)))
        rows.append([r["spec"], r["variant"], r["target"], clip(_status_text(r), 40), fmt(r.get("max_abs")),
                     fmt(r.get("ratio")), f"{total:.2f}s"])
    return rows


def _collapsed(r) -> bool:
    """A missing toolchain or device, with no verdict of another device to show."""
    return r.get("status") in COLLAPSED and not shown_devices(r)


def collapsed_lines(reports) -> list:
    """'tir-cuda: 20 artifact(s) of 6 spec(s): built, not validated: no CUDA device; next: <fix>'
    lines; a fix that does not fit goes on a line of its own, so no command is ever clipped."""
    groups = {}
    for r in reports:
        if _collapsed(r):
            groups.setdefault((r["target"], r["status"], r.get("reason", ""), r.get("fix", "")), []).append(r)
    lines = []
    for (target, status, reason, fix), rs in sorted(groups.items()):
        specs = sorted({r["spec"] for r in rs})
        text = f"{target}: {len(rs)} artifact(s) of {len(specs)} spec(s): {reason or status}"
        if fix and len(text) + len(fix) + 8 <= WIDTH:
            lines.append(f"{text}; next: {fix}")
        else:
            lines += [clip(text, WIDTH)] + ([f"  next: {fix}"] if fix else [])
    return lines


class SummaryReporter(ConsoleReporter):
    """doit's console output, then one table of every artifact validated in this run."""

    out = Path("out")                 # where the cache report goes (EngineReporter binds the project's)

    def __init__(self, outstream, options):
        super().__init__(outstream, options)
        self._validated, self._bad_specs = [], []
        self._ran, self._uptodate = [], []          # for the cache summary
        self._needed = None                         # [(validate task, report path)] the selected tasks need
        self._failed = {}                           # task name -> one line of why it failed
        self._started = time.time()

    def initialize(self, tasks, selected_tasks):
        try:
            needed = list(tasks_and_deps_iter(tasks, selected_tasks))
        except KeyError:
            return
        self._needed = [(t.name, t.targets[0]) for t in needed if t.name.startswith("validate:") and t.targets]

    def record_failure(self, task, fail):
        msg = fail.get_msg() if hasattr(fail, "get_msg") else str(fail)
        self._failed[task.name] = reason_line(msg, task.name)

    def add_failure(self, task, fail):
        self.record_failure(task, fail)
        super().add_failure(task, fail)

    def _note(self, task, ran: bool):
        (self._ran if ran else self._uptodate).append(task)
        if task.name.startswith("validate:"):
            self._validated.append(task)
        elif task.name.startswith("build:") and task.actions:
            self._bad_specs.append(task)

    def execute_task(self, task):
        self._note(task, ran=True)
        super().execute_task(task)

    def skip_uptodate(self, task):
        self._note(task, ran=False)
        super().skip_uptodate(task)

    def complete_run(self):
        super().complete_run()
        self.write_summary(self.run_reports())

    def run_reports(self) -> list:
        """The report of every artifact the run asked for (engine/outcomes.py): validated,
        up to date, or not built (with the stage that failed and why)."""
        if self._needed is not None:
            return artifact_reports(self._needed, self._failed, self._started)
        reports = []
        for task in self._validated:
            path = Path(task.targets[0])
            try:
                reports.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                spec, variant, target = task.name.split(":", 1)[1].split("/")
                reports.append({"spec": spec, "variant": variant, "target": target, "status": "not built"})
        return reports

    def write_summary(self, reports):
        shown = [r for r in reports if not _collapsed(r)]
        rows = sorted(summary_rows(shown), key=lambda r: (r[0], r[1], r[2]))
        for task in self._bad_specs:
            rows.append([task.name.split(":", 1)[1], "-", "-", "spec error", "-", "-", "-"])
        if rows:   # ratio: max |out - ref| / allowed, over outputs and input sets (a pass is below 1)
            self.outstream.write("\n" + table(["spec", "variant", "target", "status", "max_abs", "ratio", "time"],
                                              rows, width=WIDTH) + "\n")
        collapsed = collapsed_lines(reports)
        if collapsed:
            self.outstream.write("\n" + "\n".join(collapsed) + "\n")
        for r in reports:
            if r.get("steps"):
                self.outstream.write("\n" + step_table(r) + "\n")
        failed = [f["task"].name for f in self.failures]
        text, _report = cache_report.finish(self._ran, self._uptodate, failed, self.out)
        self.outstream.write("\n" + text)
