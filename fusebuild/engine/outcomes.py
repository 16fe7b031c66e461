"""What became of every artifact a run asked for: its report, or why it has none.

The summary table, quiet output and out/report.md are built from this list, so each shows
every artifact the selected tasks need, never a stale report:
  validated this run, or up to date       its validation.json
  validate failed                         its validation.json if this run wrote it (a fail
                                          report), else `fail` with the task's message
  an earlier stage failed                 `not built`, with the stage (render, compile or
                                          assemble: the first that failed, node artifacts
                                          included) and one line of its reason; the old
                                          validation.json is not read (it would be a stale pass)
  never reached (doit stopped early)      `not built`: did not run
"""
from __future__ import annotations

import json
from pathlib import Path

from ..status import Status

STAGES = ("render", "compile", "assemble")


def reason_line(msg: str, task_name: str = "") -> str:
    """The one line of a failure message worth showing: the first that names an error (else
    the first), without the `<stage> <artifact>: ` prefix the stage actions add, clipped."""
    lines = [ln.strip() for ln in (msg or "").strip().splitlines() if ln.strip()]
    # toolchains often lead with a location (`File "<unknown>", line 8`): prefer the error line
    line = next((ln for ln in lines if "error" in ln.lower()), lines[0] if lines else "failed")
    stage, _, aid = task_name.partition(":")
    prefix = f"{stage} {aid}: "
    if aid and line.startswith(prefix):
        line = line[len(prefix):]
    return line if len(line) <= 300 else line[:299] + "…"


def artifact_reports(validate_tasks, failures: dict, started: float) -> list:
    """One report per artifact whose validate task the run needed.

    validate_tasks: [(task name, report path)]; failures: {task name: message} of this run;
    started: when the run started (time.time()): a report older than that, for a task that
    failed in this run, is stale."""
    out = []
    for name, path in validate_tasks:
        aid = name.split(":", 1)[1]
        spec, variant, target = aid.split("/")[:3]
        base = {"spec": spec, "variant": variant, "target": target}
        upstream = _first_failed_stage(aid, failures)
        if upstream is not None:
            stage, msg = upstream
            out.append(dict(base, status=str(Status.NOT_BUILT), stage=stage, reason=f"{stage} failed: {msg}"))
            continue
        report = _read(path)
        if name in failures:
            fresh = report is not None and _mtime(path) >= started and report.get("status") == Status.FAIL
            out.append(report if fresh else dict(base, status=str(Status.FAIL), stage="validate",
                                                 reason=failures[name]))
        elif report is not None:
            out.append(dict(report, **base))       # the row names this artifact, whatever the file says
        else:
            out.append(dict(base, status=str(Status.NOT_BUILT), stage="-", reason="did not run"))
    return out


def _first_failed_stage(aid: str, failures: dict):
    for stage in STAGES:
        for name, msg in failures.items():
            if name == f"{stage}:{aid}" or name.startswith(f"{stage}:{aid}/nodes/"):
                return stage, msg
    return None


def _read(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _mtime(path) -> float:
    try:
        return Path(path).stat().st_mtime
    except OSError:
        return 0.0
