"""`fresh(key)`: the up-to-date check every stage task uses (instead of config_changed).

A stage is current when (1) its key (a JSON-able dict of everything its output depends
on that is not a file dep) has the digest stored by its last success, and (2) each of
its outputs still is the file that success produced.

On success the task stores, in doit's task values:
  _fresh     digest of the key (what the check compares: one string per task)
  _fields    the key flattened to {"a.b[0].c": leaf}, plus optional `detail` (e.g. the
             whole canonical graph where the key only has its digest): read only to
             explain a change, never to decide one
  _outputs   {target: [size, mtime_ns, sha256, ctime_ns, inode]}; a target whose size,
             mtime, ctime or inode moved is hashed, and if its content differs from what
             was produced the task reruns (a truncated or hand-edited artifact is never
             taken as current). ctime is what catches an edit that kept size and mtime
             (`touch -d` or os.utime restore mtime, and set ctime to now): no user call
             can set it back. Hashing every output on every run instead would cost a read
             of every artifact per no-op build (docs/engine.md).
A missing target is left to doit's own check (it reports it as such).
"""
from __future__ import annotations

import inspect
import json
import os

from ..hashing import digest, file_sha256, sha256

SHORT = 60          # leaves longer than this are stored as a hash


def flatten(obj, prefix: str = "") -> dict:
    """{"path": leaf} of a JSON-able value; long leaves become "sha256:<12 hex>"."""
    out = {}
    if isinstance(obj, dict) and obj:
        for k in sorted(obj, key=str):
            out.update(flatten(obj[k], f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, (list, tuple)) and obj and not all(isinstance(x, (int, float, str, bool)) for x in obj):
        for i, x in enumerate(obj):
            out.update(flatten(x, f"{prefix}[{i}]"))
    else:
        leaf = json.dumps(obj, sort_keys=True, default=str)
        out[prefix or "."] = leaf if len(leaf) <= SHORT else "sha256:" + sha256(leaf.encode())[:12]
    return out


def file_state(path) -> list | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    sha = file_sha256(path)
    return None if sha is None else [st.st_size, st.st_mtime_ns, sha, st.st_ctime_ns, st.st_ino]


def output_changed(path, state) -> bool:
    """True if the file at `path` is not the one recorded as `state` (missing: False,
    doit reports missing targets itself). Only a file whose stat moved is hashed; a state
    recorded before ctime was (3 fields) is always hashed."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    if len(state) >= 5 and [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino] == [*state[:2], *state[3:5]]:
        return False
    cur = file_state(path)
    return cur is not None and cur[2] != state[2]


class fresh:
    """doit `uptodate` entry: see the module docstring. `detail` maps a key field to a
    callable giving its full value, recorded for explanations only (e.g. the key holds
    the graph's digest, the detail the whole canonical graph)."""

    # doit inspects every uptodate callable's signature for every task, every run: give it
    # the answer directly (inspect.signature returns __signature__ when set)
    __signature__ = inspect.Signature([inspect.Parameter("task", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                                       inspect.Parameter("values", inspect.Parameter.POSITIONAL_OR_KEYWORD)])

    def __init__(self, key: dict, detail=None):
        self.key, self.detail = key, detail
        self._digest = None

    @property
    def digest(self) -> str:
        if self._digest is None:
            self._digest = digest(self.key)
        return self._digest

    def fields(self) -> dict:
        data = dict(self.key)
        for name, full in (self.detail or {}).items():
            data[name] = full()
        return flatten(data)

    def configure_task(self, task):
        def save():
            return {"_fresh": self.digest, "_fields": self.fields(),
                    "_outputs": {t: file_state(t) for t in task.targets}}
        task.value_savers.append(save)

    def __call__(self, task, values):
        if values.get("_fresh") != self.digest:
            return False
        return not self.changed_outputs(task, values)

    @staticmethod
    def changed_outputs(task, values) -> list:
        stored = values.get("_outputs") or {}
        return [t for t in task.targets if stored.get(t) and output_changed(t, stored[t])]

    def __repr__(self):
        return f"fresh({self.key!r})"
