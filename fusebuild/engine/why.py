"""Why a task runs (or would run): one line, from doit's status and the stored key fields.

`explain(task, dep_manager)` asks doit for its full status (get_log=True: every reason,
not just the first) and turns it into words, most specific first:
  never built          no record of a success (new, or its last run did not finish)
  <what> changed       a `fresh` key differs; names the fields: `spec: graph.nodes[0].op
                       'relu' -> 'silu'`, `toolchain: versions.apache-tvm ...`, or says
                       `tuning: winner for this problem changed (tile_m 256 -> 128, ...)`
  template changed     the templates its last render used resolve to other content
  output damaged       an output is not the file its last success produced
  output missing       a target is gone
  input changed        a file dep's content changed (an upstream stage produced new bytes)
Call it before the task's success is saved (the reporter does, in execute_task).
"""
from __future__ import annotations

import json

from ..tune.select import describe_change
from .uptodate import fresh

# top-level key fields -> what a user calls them
KINDS = {"graph": "spec", "hints": "spec schedule hints", "seed": "spec", "tolerance": "spec", "mode": "spec",
         "source": "spec file", "params": "spec", "versions": "toolchain", "torch": "toolchain",
         "available": "toolchain", "reason": "toolchain", "code": "fusebuild code"}
MAX_FIELDS = 2


def _short(leaf: str) -> str:
    try:
        value = json.loads(leaf)
    except (TypeError, ValueError):
        return str(leaf)
    if isinstance(value, str) and len(value) > 16 and all(c in "0123456789abcdef" for c in value):
        return value[:8]            # a digest: its head is enough to see it changed
    return json.dumps(value) if not isinstance(value, str) else value


def diff_fields(old: dict, new: dict) -> list:
    """['kind: field old -> new', ...] for every field that differs."""
    out = []
    for path in sorted(set(old) | set(new)):
        a, b = old.get(path), new.get(path)
        if a == b:
            continue
        kind = KINDS.get(path.split(".")[0].split("[")[0], "key")
        if a is None:
            out.append(f"{kind}: {path} added ({_short(b)})")
        elif b is None:
            out.append(f"{kind}: {path} removed (was {_short(a)})")
        else:
            out.append(f"{kind}: {path} {_short(a)} -> {_short(b)}")
    return out


def _key_reason(utd, task, values) -> str:
    if not values.get("_fresh"):
        return "no stored key (built by an older fusebuild)"
    if values["_fresh"] != utd.digest:
        old, new = values.get("_fields") or {}, utd.fields()
        changes = diff_fields(old, new)
        tuning = describe_change(old, new)          # one sentence for all `schedule.*` fields
        if tuning:
            changes = [tuning] + [c for c in changes if not c.split(": ", 1)[-1].startswith("schedule.")]
        if not changes:
            return "key changed"
        head = changes[:MAX_FIELDS]
        more = f" (+{len(changes) - MAX_FIELDS} more)" if len(changes) > MAX_FIELDS else ""
        return "; ".join(head) + more
    damaged = fresh.changed_outputs(task, values)
    if damaged:
        return f"output damaged: {damaged[0]} is not the file its last run produced"
    return ""


def _template_reason(task) -> str:
    from ..backends.templating import template_dirs
    from ..fsutil import read_json
    from ..hashing import file_sha256
    deps = read_json(_render_deps(task))
    if not deps or "templates" not in deps:
        return "template: no record of the templates used"
    dirs = template_dirs(deps["folder"])
    for name, (path, sha) in deps["templates"].items():
        found = next((d / name for d in dirs if (d / name).is_file()), None)
        if found is None:
            return f"template: {name} is gone"
        if not str(found).endswith(path):
            return f"template: {name} now comes from {found} (was {path})"
        if file_sha256(found) != sha:
            return f"template: {path} changed"
    return "template changed"


def _render_deps(task) -> str:
    from pathlib import Path
    return str(Path(task.targets[0]).parent / ".stages" / "render.deps.json") if task.targets else ""


def reasons(task, dep_manager) -> list:
    """Every reason doit has for running `task`, in words ([] if it is up to date)."""
    if not task.actions:
        return []
    if dep_manager._get(task.name, "checker:") is None:       # save_success always stores it
        if any(utd is False for utd, _, _ in task.uptodate):
            return [f"always runs: {task.doc or 'marked never up to date'}"]
        return ["never built (or its last run failed or did not finish)"]
    values = dep_manager.get_values(task.name)
    status = dep_manager.get_status(task, {}, get_log=True)
    if status.status == "up-to-date":
        return []
    out = []
    for utd, _args, _kw in status.reasons.get("uptodate_false", []):
        if isinstance(utd, fresh):
            text = _key_reason(utd, task, values)
            out.append(text or "key changed")
        elif getattr(utd, "__name__", "") == "templates_unchanged":
            out.append(_template_reason(task))
        elif utd is False:
            out.append(f"always runs: {task.doc or 'marked never up to date'}")
        else:
            out.append(f"up-to-date check {getattr(utd, '__name__', repr(utd))} is false")
    for target in status.reasons.get("missing_target", []):
        out.append(f"output missing: {target}")
    for dep in status.reasons.get("missing_file_dep", []):
        out.append(f"input not built yet: {dep}")
    if status.reasons.get("checker_changed"):
        out.append("file checker changed")
    for dep in status.reasons.get("added_file_dep", []):
        out.append(f"new input: {dep}")
    for dep in status.reasons.get("removed_file_dep", []):
        out.append(f"input dropped: {dep}")
    changed = status.reasons.get("changed_file_dep", [])
    if changed:
        more = f" (+{len(changed) - 1} more)" if len(changed) > 1 else ""
        out.append(f"input changed: {sorted(changed)[0]}{more}")
    if status.reasons.get("has_no_dependencies"):
        out.append("has no dependencies (always runs)")
    return out or ["not up to date"]


def explain(task, dep_manager) -> str:
    """One line: the first (most specific) reasons, joined."""
    rs = reasons(task, dep_manager)
    return "; ".join(rs[:2]) + (f" (+{len(rs) - 2} more)" if len(rs) > 2 else "") if rs else "up to date"
