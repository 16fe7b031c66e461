"""Console reporting: doit's reporter plus the summary table printed at the end of a run."""
from __future__ import annotations

import json
from pathlib import Path

from doit.reporter import ConsoleReporter


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
        rows.append([r["spec"], r["variant"], r["target"], status, fmt(r.get("max_abs")), fmt(r.get("max_rel")),
                     f"{total:.2f}s"])
    return rows


def table(header, rows) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)] if rows else [len(h) for h in header]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


class SummaryReporter(ConsoleReporter):
    """doit's console output, then one table of every artifact validated in this run."""

    def __init__(self, outstream, options):
        super().__init__(outstream, options)
        self._validated, self._bad_specs = [], []

    def _note(self, task):
        if task.name.startswith("validate:"):
            self._validated.append(task)
        elif task.name.startswith("build:") and task.actions:
            self._bad_specs.append(task)

    def execute_task(self, task):
        self._note(task)
        super().execute_task(task)

    def skip_uptodate(self, task):
        self._note(task)
        super().skip_uptodate(task)

    def skip_ignore(self, task):
        super().skip_ignore(task)

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
        rows = summary_rows(reports)
        for task in self._bad_specs:
            rows.append([task.name.split(":", 1)[1], "-", "-", "spec error", "-", "-", "-"])
        if rows:
            self.outstream.write("\n" + table(["spec", "variant", "target", "status", "max_abs", "max_rel", "time"],
                                              rows) + "\n")
