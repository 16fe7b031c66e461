"""The cache's end-of-build summary: hits and misses per stage, printed and written to
`out/cache-report.json` (what CI uploads next to the validation reports).

Each stage action leaves its outcome in `<artifact>/.stages/<stage>.cache.json` (see
cache/__init__.py); the reporter hands this module the stage tasks that ran, were up to date, or
failed in this run, and it counts:
  up-to-date   doit did not run the task (nothing it depends on changed)
  local-hit    restored from the local cache, tool skipped
  remote-hit   restored from the remote cache, tool skipped
  miss         the tool ran and its result was stored
  uncached     ran, result not stored (cache off)
  failed       the task failed (results of failures are never stored)
Hit rate = hits / (hits + misses) over the tasks that ran.
"""
from __future__ import annotations

from pathlib import Path

from .. import cache
from ..fsutil import read_json, write_json

STAGES = ("render", "compile", "assemble", "validate")
COLUMNS = ("up-to-date", "local-hit", "remote-hit", "miss", "uncached", "failed")
REPORT_NAME = "cache-report.json"


def collect(ran, uptodate, failed_names) -> dict:
    """ran/uptodate: doit tasks; failed_names: names of tasks that failed in this run."""
    counts = {s: dict.fromkeys(COLUMNS, 0) for s in STAGES}
    tasks, uploaded, corrupt, remote_errors, stuck = {}, 0, [], [], []
    for task in uptodate:
        stage = task.name.split(":", 1)[0]
        if stage in counts:
            counts[stage]["up-to-date"] += 1
    for task in ran:
        stage = task.name.split(":", 1)[0]
        if stage not in counts or not task.targets:
            continue
        if task.name in failed_names:
            outcome = "failed"
        else:
            rec = read_json(Path(task.targets[0]).parent / ".stages" / f"{stage}.cache.json") or {}
            outcome = rec.get("outcome", "uncached")
            outcome = {"off": "uncached"}.get(outcome, outcome)
            uploaded += rec.get("uploaded", 0)
            corrupt += rec.get("corrupt", [])
            stuck += rec.get("stuck", [])
            if rec.get("remote_error") and rec["remote_error"] not in remote_errors:
                remote_errors.append(rec["remote_error"])
        counts[stage][outcome if outcome in COLUMNS else "uncached"] += 1
        tasks[task.name] = outcome
    hits = sum(c["local-hit"] + c["remote-hit"] for c in counts.values())
    lookups = hits + sum(c["miss"] for c in counts.values())
    return {"cache": cache.get().describe(), "stages": counts, "hits": hits, "lookups": lookups,
            "hit_rate": round(hits / lookups, 4) if lookups else None, "uploaded_entries": uploaded,
            "corrupt": corrupt, "stuck": stuck, "remote_errors": remote_errors, "tasks": dict(sorted(tasks.items()))}


def text(report: dict) -> str:
    c = report["cache"]
    if not c["enabled"]:
        where = "off"
    else:
        where = f"local {c['local']}"
        if c["remote"]:
            where += f"; remote {c['remote']['url']} ({c['remote']['mode']})"
    rows = [["stage", *COLUMNS]] + [[s, *(str(report["stages"][s][k]) for k in COLUMNS)] for s in STAGES]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"cache: {where}"] + ["  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip() for r in rows]
    rate = "-" if report["hit_rate"] is None else f"{report['hit_rate']:.0%}"
    tail = f"cache hit rate {rate} ({report['hits']}/{report['lookups']} stage tasks that ran)"
    if report["uploaded_entries"]:
        tail += f", {report['uploaded_entries']} uploads"
    if report["corrupt"]:
        tail += f", {len(report['corrupt'])} corrupt entries discarded"
    lines.append(tail)
    lines += [f"remote cache error: {e}" for e in report["remote_errors"]]
    return "\n".join(lines) + "\n"


def finish(ran, uptodate, failed_names, out) -> tuple:
    """Collect, write out/cache-report.json; (the text to print, the report)."""
    report = collect(ran, uptodate, set(failed_names))
    out = Path(out)
    if out.is_dir():
        write_json(out / REPORT_NAME, report)
    return text(report), report
