"""What schedule a build uses: the tuned winner for this device, else the spec's hints, else
the backend's defaults.

`schedule(a, backend)` answers for one artifact, as a `Schedule`:
  source     tuned | hint | default (| candidate: an artifact `fusebuild tune` builds)
  used       the resolved hints the backend renders with
  tuned_on   `<device>, <date>` of the winner, when tuned
The render key (plan/keys.py) holds `source`, `used` and `tuned_on`, so a new winner
re-renders what it changes and `fusebuild why` names it ("tuning: winner for this problem
changed (tile_m 256 -> 128, tuned on ...)"); validation.json reports the same record.

A winner is looked up under the artifact's key (problem, target, device, toolchain
versions: problem.py) in the records file (FUSEBUILD_TUNING), then in the artifact cache
(share.py). Records of another device or toolchain are never used: a record counts only
if its `key` is the key computed here and its `key_id` that key's digest (records.py
`check`); a malformed record is skipped. A winner is used only if an `ok` measurement of the
same key, candidate and config backs it, and only if its config is complete (every hint the
backend defaults) and every hint is one the backend declares and accepts; otherwise the note
says why it was not. A records file that cannot be read (a directory, no permission) counts
as no records, with a note. Only fused artifacts are tuned; FUSEBUILD_TUNING=off turns tuned
schedules off.
"""
from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

from .. import settings
from ..backends.base import part_label
from ..hashing import digest
from . import device as D
from .problem import Key, problem, problem_id, sizes
from .records import Records

SETTING = "FUSEBUILD_TUNING"


@dataclass(frozen=True)
class Schedule:
    source: str
    given: dict
    used: dict
    tuned_on: str = ""
    winner: dict = field(default_factory=dict)     # key_id, candidate, median_s, run, timed_at (tuned only)
    note: str = ""                                  # why a winner was not used
    parts: dict = field(default_factory=dict)      # part label -> {used, tuned_on, key_id, candidate, median_s}

    def key_fields(self) -> dict:
        """What the render and validate keys hold (and `why` explains). The note is in it so that
        validation.json, which reports it, is rewritten when it comes or goes (a winner re-timed
        with this code is no longer stale) even though the kernel is the same."""
        out = {"source": self.source, "used": self.used}
        if self.tuned_on:
            out["tuned_on"] = self.tuned_on
        if self.parts:
            out["parts"] = {k: {"used": p["used"], "tuned_on": p["tuned_on"]} for k, p in self.parts.items()}
        if self.note:
            out["note"] = self.note
        return out

    def report(self) -> dict:
        out = {"source": self.source, "hints": self.given, "resolved": self.used}
        if self.tuned_on:
            out.update(tuned_on=self.tuned_on, tuning=self.winner)
        if self.parts:
            out["parts"] = self.parts
        if self.note:
            out["note"] = self.note
        return out

    def part_hints(self) -> dict:
        """What RenderJob.parts takes: part label -> hints."""
        return {k: p["used"] for k, p in self.parts.items()}


def records_path(env=None) -> Path | None:
    value = settings.get(SETTING, env).strip()
    return None if value.lower() == "off" else Path(value)


_STORES = {}


def load(path: Path) -> Records:
    """The records of `path`, read again only when the file changed."""
    try:
        st = os.stat(path)
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = None
    hit = _STORES.get(str(path))
    if hit is None or hit[0] != stamp:
        hit = (stamp, Records(path))
        _STORES[str(path)] = hit
    return hit[1]


@functools.cache
def _versions(backend) -> tuple:
    return tuple(sorted(backend.toolchain().versions.items()))


@functools.cache
def render_code(backend) -> str:
    """Digest of what turns a config into a kernel: the backend's folder and its templates.
    Records carry it (`code`): a winner measured with other render code still builds (its
    config is checked as any hint is), with a note; `fusebuild tune` measures again what was
    measured with other code (a changed kernel form may change which config is fastest)."""
    from ..plan.keys import backend_folder, code_digest, templates_digest
    return digest([code_digest(backend_folder(backend)), templates_digest(backend.template_folder)])[:16]


def key_for(variant, target: str, space, versions: dict, device: str) -> Key:
    given = variant.schedule.get(target, {})
    return Key.of(problem_id(problem(variant.graph, space.pinned(given), sizes(variant))), target, device, versions)


def tunable(a) -> bool:
    return a.variant.mode == "fused" and not getattr(a, "node", "") and D.kind(a.target) in ("cpu", "cuda")


def schedule(a, backend, env=None) -> Schedule:
    from .space import Space
    given = dict(a.hints)
    table = backend.info.hints
    if getattr(a, "config", None) is not None:                    # a candidate being tuned
        return Schedule("candidate", given, dict(a.config))
    plain = Schedule("hint" if given else "default", given, table.resolve(given))
    path = records_path(env)
    if path is None or not tunable(a):
        return plain
    space = Space.of(backend.info)
    if not space.searched:
        return plain
    versions, device = dict(_versions(backend)), D.name(a.target, env)
    key = key_for(a.variant, a.target, space, versions, device)
    store = load(path)
    if store.error:
        return dataclasses.replace(plain, note=f"tuning records not read ({store.error}): not tuned")
    win = store.winner(key.id) or _from_cache(store, key)
    bad = _unusable(table, win)
    ignored = _ignored(store, key, win)
    if win is None:
        chosen = dataclasses.replace(plain, note=ignored) if ignored else plain
    elif bad:
        chosen = Schedule(plain.source, given, plain.used,
                          note="; ".join(n for n in (f"tuned winner not used: {bad}", ignored) if n))
    else:
        chosen = Schedule("tuned", given, dict(win["config"]), f"{win['key']['device']}, {win['date'][:10]}",
                          {"key_id": key.id, "candidate": win["candidate"], "median_s": win.get("median_s"),
                           "run": win.get("run"), **_timed_at(win)},
                          note="; ".join(n for n in (stale(win, backend, store), ignored) if n))
    return _with_parts(chosen, a, backend, space, store, versions, device)


def stale(win: dict, backend, store: Records) -> str:
    """A note when the winner was measured with other render code ('' when the same, or when a
    later run with this code re-timed it as its reference and it stayed the winner)."""
    now = render_code(backend)
    if win.get("code") == now or any(r["candidate"] == win["candidate"] and r.get("code") == now
                                     and r.get("date", "") >= win.get("date", "")
                                     for r in store.of(win["key_id"], "measurement")):
        return ""
    was = f"render code {win['code']}" if win.get("code") else "render code not recorded"
    return (f"tuned winner measured with other {backend.name} kernel code ({was}, now {now}): it still builds; "
            "`fusebuild tune` measures it again")


def _unusable(table, win) -> str:
    """Why a winner's hints cannot be used ('' if they can): a hint no longer declared or accepted,
    or one the backend defaults that the config lacks (a partial config is never completed)."""
    if win is None:
        return ""
    missing = [k for k in table.resolve({}) if k not in win["config"]]
    if missing:
        return f"its config lacks {', '.join(missing)} (a winner's config names every hint)"
    return "; ".join(f"{k}={v}: {table[k].problem(v) if k in table else 'no such hint'}"
                     for k, v in win["config"].items() if k not in table or table[k].problem(v))


def _ignored(store: Records, key: Key, win) -> str:
    """A note on the records of `key` that were ignored: malformed ones filed under its id (or
    under its id with another key), and winners no `ok` measurement backs ('' if none)."""
    notes = []
    if store.dropped.get(key.id):
        notes.append(f"{store.dropped[key.id]} tuning record(s) filed under this key ignored (malformed, or "
                     "their key is not this device's and toolchain's)")
    unbacked = [r for r in store.unbacked(key.id) if win is None or r.get("date", "") >= win.get("date", "")]
    if unbacked:
        names = ", ".join(sorted({r["candidate"] for r in unbacked}))
        notes.append(f"tuned winner not used: {names} has no ok measurement of this key and config "
                     "(failed or never measured)")
    return "; ".join(notes)


def _with_parts(chosen: Schedule, a, backend, space, store, versions: dict, device: str) -> Schedule:
    """A dynamic artifact that calls static code per part (mlir-cpu's row functions) uses, in
    each part, the winner tuned for that static problem where there is one: at M = 1024 it then
    runs what the static artifact of M = 1024 runs. The dynamic winner was timed over the
    range (its geometric mean), so a static problem's own winner knows that size better."""
    if not a.variant.graph.dynamic:
        return chosen
    pinned, parts, notes = space.pinned(chosen.given), {}, []
    for values, graph in backend.static_parts(a.variant.graph):
        label = part_label(values)
        key = Key.of(problem_id(problem(graph, pinned)), a.target, device, versions)
        win = store.winner(key.id) or _from_cache(store, key)
        if win is None:
            continue
        try:
            bad = _unusable(backend.info.hints, win) or backend.part_problem(chosen.used, win["config"])
        except (KeyError, TypeError, ValueError) as err:
            bad = f"its config does not apply ({type(err).__name__}: {err})"
        if bad:
            notes.append(f"{label}: tuned winner not used: {bad}")
            continue
        parts[label] = {"used": dict(win["config"]), "tuned_on": f"{win['key']['device']}, {win['date'][:10]}",
                        "key_id": key.id, "candidate": win["candidate"], "median_s": win.get("median_s")}
        old_code = stale(win, backend, store)
        if old_code:
            notes.append(f"{label}: {old_code}")
    note = "; ".join(n for n in (chosen.note, *notes) if n)
    return dataclasses.replace(chosen, parts=parts, note=note)


def _timed_at(win: dict) -> dict:
    """A dynamic problem's winner: the sizes it was timed at (median_s is their geometric mean);
    records.check has made sure `sizes` is a list of {at, median_s}."""
    return {"timed_at": [s["at"] for s in win["sizes"]]} if win.get("sizes") else {}


_PULLED = set()


def _from_cache(store: Records, key: Key):
    """Records the artifact cache has for `key` (once per process), added to `store` in memory."""
    if key.id not in _PULLED:
        _PULLED.add(key.id)
        from .share import pull
        store.add_extra(pull(key))
    return store.winner(key.id)


def describe_change(old: dict, new: dict) -> str:
    """One sentence for a change of a key's `schedule` fields (flattened, as `why` stores
    them: {"schedule.used.tile_m": "128", ...}); '' if they did not change."""
    def part(fields, name):
        return {k.split(".", 2)[2]: v for k, v in fields.items() if k.startswith(f"schedule.{name}.")}

    def leaf(fields, name):
        v = fields.get(f"schedule.{name}")
        return v.strip('"') if isinstance(v, str) else v

    old_used, new_used = part(old, "used"), part(new, "used")
    src_old, src_new = leaf(old, "source"), leaf(new, "source")
    on_old, on_new = leaf(old, "tuned_on"), leaf(new, "tuned_on")
    parts = _parts_change(part(old, "parts"), part(new, "parts"))
    if (old_used, src_old, on_old) == (new_used, src_new, on_new):
        note_old, note_new = leaf(old, "note"), leaf(new, "note")
        if note_old == note_new:
            return parts
        shown = note_new if note_new and not str(note_new).startswith("sha256:") else "see validation.json"
        what = f"tuning: same schedule, note now: {shown}" if note_new else "tuning: same schedule, its note is gone"
        return f"{what}; {parts}" if parts else what
    what = _main_change(old_used, new_used, src_old, src_new, on_old, on_new)
    return f"{what}; {parts}" if parts else what


def _parts_change(old: dict, new: dict) -> str:
    """One clause for the static winners of a dynamic artifact's parts ({"M=1024.used.tile_m": ..}); '' if same."""
    def by_label(fields):
        out = {}
        for k, v in fields.items():
            label, rest = k.split(".", 1)
            out.setdefault(label, {})[rest] = v
        return out

    a, b = by_label(old), by_label(new)
    changed = sorted((k for k in set(a) | set(b) if a.get(k) != b.get(k)), key=lambda k: (len(k), k))
    if not changed:
        return ""

    def clause(label):
        on = str((b.get(label) or {}).get("tuned_on", "")).strip('"')
        if label not in a:
            return f"{label} now uses its static winner (tuned on {on})"
        if label not in b:
            return f"{label} no longer has a static winner"
        return f"{label} static winner changed (tuned on {on})"
    return "tuning: " + ", ".join(clause(k) for k in changed)


def _main_change(old_used, new_used, src_old, src_new, on_old, on_new) -> str:
    hints = ", ".join(f"{k} {old_used.get(k, 'unset')} -> {new_used.get(k, 'unset')}"
                      for k in sorted(set(old_used) | set(new_used)) if old_used.get(k) != new_used.get(k))
    if src_old is None:
        return f"schedule: source {src_new} (not in the key of the last build)"
    if src_old == "tuned" and src_new == "tuned":
        what = f"tuning: winner for this problem changed ({hints + ', ' if hints else ''}tuned on {on_new})"
    elif src_new == "tuned":
        what = f"tuning: now uses the winner tuned on {on_new} (was {src_old}{'; ' + hints if hints else ''})"
    elif src_old == "tuned":
        what = f"tuning: the winner tuned on {on_old} is no longer used (now {src_new}{'; ' + hints if hints else ''})"
    else:
        what = f"schedule: {src_old} -> {src_new}" if src_old != src_new else "schedule: hints used changed"
        what += f" ({hints})" if hints else ""
    return what
