"""The browsable summary of the last build: out/report.md and out/report.html.

One row per artifact the run looked at: status, numerics, per-stage time, and why it
was rebuilt (this run's reasons per stage; for an artifact that was up to date, the
reasons of the run that last rebuilt it, kept in out/.fusebuild/rebuilds.json). Then the
toolchain versions seen, failures, and orphans. Written atomically at the end of every
run; nothing reads it back except the next run's history.
"""
from __future__ import annotations

import html
import time
from pathlib import Path

from ..fsutil import read_json, write_atomic, write_json
from ..run.devices import shown as shown_devices

STAGES = ("render", "compile", "assemble", "validate")


def _num(x) -> str:
    return "-" if x is None else (f"{x:.2e}" if isinstance(x, float) else str(x))


def rows(reports, ran: dict, history: dict) -> list:
    """ran: {task name: {"why", "seconds", "ok"}} of this run."""
    out = []
    for r in reports:
        aid = f"{r['spec']}/{r['variant']}/{r['target']}"
        whys = {s: ran[f"{s}:{aid}"]["why"] for s in STAGES if f"{s}:{aid}" in ran}
        if whys:
            why, when = "; ".join(f"{s}: {w}" for s, w in whys.items()), "this run"
        elif aid in history:
            why, when = history[aid]["why"], history[aid]["when"]
        else:
            why, when = "-", "-"
        t = r.get("timings") or {}
        elsewhere = shown_devices(r)
        reason = "; ".join(x for x in (r.get("reason") or "", elsewhere) if x)
        out.append({"artifact": aid, "status": r.get("status") or "?", "reason": reason,
                    "max_abs": r.get("max_abs"), "max_rel": r.get("max_rel"),
                    "timings": {s: t.get(s) for s in STAGES}, "rebuilt": when, "why": why,
                    "toolchain": r.get("toolchain") or {}, "schedule": schedule_text(r.get("schedule"))})
    return out


def schedule_text(sched) -> str:
    """`tuned on <device>, <date>` | `hint` | `default` (tune/select.py), '-' if none recorded;
    a dynamic artifact adds the parts that use their static problem's winner (`; M=1024 tuned on ...`)."""
    if not sched:
        return "-"
    text = f"tuned on {sched['tuned_on']}" if sched.get("source") == "tuned" else sched.get("source", "-")
    return "; ".join([text] + [f"{k} tuned on {p['tuned_on']}" for k, p in (sched.get("parts") or {}).items()])


def update_history(state_dir: Path, ran: dict) -> dict:
    path = Path(state_dir) / "rebuilds.json"
    history = read_json(path, {})
    when = time.strftime("%Y-%m-%d %H:%M:%S")
    by_artifact = {}
    for name, info in ran.items():
        stage, _, aid = name.partition(":")
        if stage in STAGES and aid.count("/") == 2:
            by_artifact.setdefault(aid, []).append(f"{stage}: {info['why']}")
    for aid, whys in by_artifact.items():
        history[aid] = {"when": when, "why": "; ".join(whys)}
    if by_artifact:
        write_json(path, history)
    return history


def markdown(table: list, run: dict) -> str:
    lines = [f"# fusebuild: last build ({run['when']})", "",
             f"{run['ran']} task(s) ran, {run['up_to_date']} up to date, {run['failed']} failed, "
             f"in {run['wall']:.2f} s. Artifacts: "
             + ", ".join(f"{n} {s}" for s, n in sorted(_count(table).items())), ""]
    lines += [("| artifact | status | max_abs | max_rel | schedule | render | compile | assemble | validate "
               "| rebuilt | why |"),
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        status = r["status"] + (f" ({r['reason']})" if r["reason"] else "")
        lines.append("| " + " | ".join([r["artifact"], status, _num(r["max_abs"]), _num(r["max_rel"]), r["schedule"]]
                                       + [_secs(r["timings"][s]) for s in STAGES]
                                       + [r["rebuilt"], r["why"].replace("|", "\\|")]) + " |")
    versions = _versions(table)
    if versions:
        lines += ["", "## Toolchains", ""] + [f"- {k}: {', '.join(sorted(v))}" for k, v in sorted(versions.items())]
    if run["failures"]:
        lines += ["", "## Failures", ""] + [f"- `{name}`: {msg}" for name, msg in run["failures"]]
    if run["orphans"] or run["leftovers"]:
        lines += ["", "## Orphans (no spec asks for these; `python -m fusebuild clean` removes them)", ""]
        lines += [f"- {p}" for p in run["orphans"] + run["leftovers"]]
    return "\n".join(lines) + "\n"


def to_html(table: list, run: dict) -> str:
    e = html.escape
    colors = {"pass": "#d4f7d4", "fail": "#f7d4d4", "not-run": "#f0f0f0", "built-not-validated": "#f7f0d4"}
    head = "".join(f"<th>{h}</th>" for h in ("artifact", "status", "max_abs", "max_rel", "schedule", *STAGES,
                                             "rebuilt", "why"))
    body = []
    for r in table:
        cells = [r["artifact"], r["status"] + (f" ({r['reason']})" if r["reason"] else ""), _num(r["max_abs"]),
                 _num(r["max_rel"]), r["schedule"]] + [_secs(r["timings"][s]) for s in STAGES] + [r["rebuilt"],
                                                                                                  r["why"]]
        body.append(f"<tr style='background:{colors.get(r['status'], '#fff7d0')}'>"
                    + "".join(f"<td>{e(str(c))}</td>" for c in cells) + "</tr>")
    versions = "".join(f"<li>{e(k)}: {e(', '.join(sorted(v)))}</li>" for k, v in sorted(_versions(table).items()))
    fails = "".join(f"<li><code>{e(n)}</code>: {e(m)}</li>" for n, m in run["failures"])
    orphans = "".join(f"<li>{e(str(p))}</li>" for p in run["orphans"] + run["leftovers"])
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>fusebuild: last build</title>
<style>body{{font-family:sans-serif}} table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:left}}</style></head><body>
<h1>fusebuild: last build ({e(run['when'])})</h1>
<p>{run['ran']} task(s) ran, {run['up_to_date']} up to date, {run['failed']} failed, in {run['wall']:.2f} s.</p>
<table><tr>{head}</tr>{''.join(body)}</table>
<h2>Toolchains</h2><ul>{versions}</ul>
{'<h2>Failures</h2><ul>' + fails + '</ul>' if fails else ''}
{'<h2>Orphans</h2><p>Remove with <code>python -m fusebuild clean</code>.</p><ul>' + orphans + '</ul>'
 if orphans else ''}
</body></html>
"""


def write(out: Path, reports, ran: dict, run: dict) -> Path:
    history = update_history(Path(out) / ".fusebuild", ran)
    table = rows(reports, ran, history)
    write_atomic(Path(out) / "report.md", markdown(table, run), only_if_changed=True)
    write_atomic(Path(out) / "report.html", to_html(table, run), only_if_changed=True)
    return Path(out) / "report.md"


def _secs(x) -> str:
    return "-" if x is None else f"{x:.2f}s"


def _count(table) -> dict:
    c = {}
    for r in table:
        c[r["status"]] = c.get(r["status"], 0) + 1
    return c


def _versions(table) -> dict:
    v = {}
    for r in table:
        for k, ver in r["toolchain"].items():
            if ver is not None:
                v.setdefault(k, set()).add(str(ver))
    return v
