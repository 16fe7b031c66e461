"""Tuning records through the artifact cache: one action per problem key, one blob of records.

The records of a key travel like a stage's output (cache/__init__.py): the action digest
of `{"stage": "tuning", "key": <problem, target, device, toolchain>}` names an AC record
listing one file, `records.jsonl`, whose bytes are a CAS blob (the key's records, sorted).
Unlike a stage, the answer grows: `fusebuild tune` pulls what the cache has, merges it
with the file, measures only what is new, and pushes the union back (last writer wins on
the AC record; nothing is lost that either writer had pulled).

A build asks the cache only for keys its records file has no winner for (local store
first, then the remote one when FUSEBUILD_REMOTE_CACHE is set), once per process. Nothing
read is trusted: the AC record must answer this action and the blob must hash to its name.
"""
from __future__ import annotations

from .. import cache as C
from ..hashing import sha256
from .problem import Key
from .records import blob, parse_lines

STAGE = "tuning"
FILE = "records.jsonl"


def action(key: Key) -> str:
    return C.action_digest({"stage": STAGE, "key": key.as_json()})


def pull(key: Key, cache: C.Cache | None = None) -> list:
    """The key's records in the cache (local, then remote), [] if none or unreadable."""
    c = cache or C.get()
    if not c.enabled:
        return []
    act = action(key)
    for source in ("local", "remote"):
        data = _local(c, act) if source == "local" else _remote(c, act)
        if data is not None:
            return parse_lines(data.decode(errors="replace"))[0]
    return []


def push(key: Key, recs: list, cache: C.Cache | None = None) -> bool:
    """Store the key's records locally and (unless read-only) remotely. True if stored."""
    c = cache or C.get()
    if not c.enabled or not recs:
        return False
    data = blob(recs)
    act = action(key)
    raw = C.make_record(act, STAGE, {FILE: data})
    c.local.put_blob(data)
    c.local.put_record(act, raw)
    r = c.remote
    if r is not None and r.active and not r.readonly:
        r.put("cas", sha256(data), data)
        if r.active:
            r.put("ac", act, raw)
    return True


def _local(c, act):
    raw = c.local.get_record(act)
    if raw is None:
        return None
    try:
        sha = C.check_record(raw, act, (FILE,))[FILE]["sha256"]
        return c.local.get_blob(sha)
    except C.Corrupt as err:
        c.local.discard("ac", act)
        C._warn(f"tuning records: {err}")
        return None


def _remote(c, act):
    r = c.remote
    if r is None or not r.active:
        return None
    raw = r.get("ac", act, limit=1 << 20)
    if raw is None:
        return None
    try:
        entry = C.check_record(raw, act, (FILE,))[FILE]
    except C.Corrupt as err:
        C._warn(f"tuning records: remote {err}")
        return None
    data = r.get("cas", entry["sha256"], limit=entry["size"])
    if data is None or sha256(data) != entry["sha256"]:
        return None
    c.local.put_blob(data)
    c.local.put_record(act, raw)
    return data
