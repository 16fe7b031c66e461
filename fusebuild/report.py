"""Console reporting: doit's reporter plus the summary table printed at the end of a run
(and, for artifacts validated in compare mode, their per-node tables)."""
from __future__ import annotations

import json
from pathlib import Path

from doit.reporter import ConsoleReporter

from . import cache_report


def fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.2e}"
    return str(x)


def summary_rows(reports) -> list:
    rows = []
    for r in reports:
        t = r.get("timings", {})
        total = sum(v for v in t.values() if isinstance(v, (int, float)))
        status = r.get("status") or "?"
        if status == "not-run":
            status = f"not-run: {r.get('reason', '')}"
        elif status == "built-not-validated":
            status = r.get("reason") or "built, not validated"
        elif status == "emulated":
            status = "emulated (no device run)"
        if r.get("mode", "fused") != "fused":  # a reference-mode pass is not an artifact's
            status = f"{status} ({r['mode']})"
        rows.append([r["spec"], r["variant"], r["target"], status, fmt(r.get("max_abs")), fmt(r.get("max_rel")),
                     f"{total:.2f}s"])
    return rows


def table(header, rows) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)] if rows else [len(h) for h in header]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def step_table(report: dict) -> str:
    """The compare report of one artifact as a table; the first step over tolerance is marked."""
    rows = []
    for s in report.get("steps", []):
        mark = "<-- first over tolerance" if s.get("first_bad") else ("over" if not s["ok"] else "")
        rows.append([s["step"], s["node"], f"{s['op']}({', '.join(s['inputs'])})", fmt(s.get("max_abs")),
                     fmt(s.get("mean_abs")), fmt(s.get("max_rel")), fmt(s.get("atol")), "ok" if s["ok"] else "FAIL",
                     mark])
    title = f"compare {report['spec']}/{report['variant']}/{report['target']}"
    return title + "\n" + table(["step", "node", "op", "max_abs", "mean_abs", "max_rel", "atol", "status", ""], rows)


class SummaryReporter(ConsoleReporter):
    """doit's console output, then one table of every artifact validated in this run."""

    def __init__(self, outstream, options):
        super().__init__(outstream, options)
        self._validated, self._bad_specs = [], []
        self._ran, self._uptodate = [], []          # for the cache summary

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
        """The validation report of every artifact this run looked at (built or up to date)."""
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
        rows = sorted(summary_rows(reports), key=lambda r: (r[0], r[1], r[2]))
        for task in self._bad_specs:
            rows.append([task.name.split(":", 1)[1], "-", "-", "spec error", "-", "-", "-"])
        if rows:
            self.outstream.write("\n" + table(["spec", "variant", "target", "status", "max_abs", "max_rel", "time"],
                                              rows) + "\n")
        for r in reports:
            if r.get("steps"):
                self.outstream.write("\n" + step_table(r) + "\n")
        failed = [f["task"].name for f in self.failures]
        self.outstream.write("\n" + cache_report.finish(self._ran, self._uptodate, failed))
