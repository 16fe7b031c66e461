"""The tuning records store: one JSON object per line, appended, never rewritten.

Why JSON lines and not SQLite: the file is meant to be committed. A line per record diffs
as one added line per measurement, and two branches that both tuned merge cleanly with
git's union merge (`.gitattributes`: `tuning/*.jsonl merge=union`): both sides only
append, so the union is the right answer, where a SQLite file is a binary conflict.
Concurrent writers on one machine (two `fusebuild tune` runs) each append whole lines
under an exclusive flock, one write per batch; readers skip a line that does not parse
(a torn or conflict-marked line costs that record, never the file). Duplicates (the same
record arriving from the cache and from git) are dropped by their content.

Two kinds of line, both carrying `key` (problem, target, device, toolchain versions) and
`key_id` (its digest):
  measurement  one candidate in one run: `candidate` (config digest), `config` (the
               resolved hints), `status` (ok | compile-failed | wrong-result | run-failed),
               `error`, time statistics (`median_s`, `q1_s`, `q3_s`, `iqr_s`, `min_s`,
               `samples`), `torch_s` (the graph in torch, same run), `run`, `anchor` (the
               incumbent winner re-timed as the run's reference), `date`, `method`, `env`
               (clocks, power or CPU load before and after), `code` (the render code the
               candidates were built with: tune/select.py render_code)
  winner       the winner of a run (compared only within that run): `candidate`, `config`,
               `median_s`, `run`, `date`, `previous` (the winner it replaced), `rule` and
               `reference` (what it had to beat: the re-timed winner, else the spec's hints
               or defaults; the fastest wins only if its IQR lies wholly below the reference's)
A key's winner is its newest winner record by date that is backed by an `ok` measurement
of the same key, candidate and config (a winner naming a failed or never measured candidate
is ignored: `unbacked`).

Nothing read is trusted: a line is used only if it parses and has the shape above (`check`:
the types of every field read), and if its `key_id` is the digest of its `key`; a record is
then used for a key only when that key is the one this machine computes (same id). The
others are skipped and counted (`skipped`, `why_skipped`; per key id in `dropped`), like a
line that does not parse. A file that cannot be read (a directory, no permission) reads as
no records, with `error` saying why.
"""
from __future__ import annotations

import fcntl
import json
import math
import os
import time
from collections import Counter
from pathlib import Path

from ..hashing import canonical, sha256
from .problem import Key

FORMAT = 1
KINDS = ("measurement", "winner")
OK = "ok"
STATUSES = (OK, "compile-failed", "wrong-result", "run-failed")


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def dumps(record: dict) -> str:
    return canonical(record).decode()


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _scalar(x) -> bool:
    return isinstance(x, (int, float, str)) and not (isinstance(x, float) and not math.isfinite(x))


def _sizes_problem(sizes) -> str:
    if not isinstance(sizes, list) or not all(isinstance(s, dict) and isinstance(s.get("at"), dict)
                                              and _num(s.get("median_s")) for s in sizes):
        return "sizes is not a list of {at: {...}, median_s: number}"
    return ""


def check(rec) -> str:
    """Why `rec` is not a usable record ('' if it is): the shape and types of the fields read."""
    if not isinstance(rec, dict):
        return "not an object"
    if rec.get("format") != FORMAT:
        return f"format is not {FORMAT}"
    kind = rec.get("kind")
    if kind not in KINDS:
        return f"kind is not one of {', '.join(KINDS)}"
    key = rec.get("key")
    if not isinstance(key, dict):
        return "key is not an object"
    try:
        k = Key.from_json(key)
        if not all(isinstance(v, str) for v in (k.problem, k.target, k.device)):
            return "key problem, target and device must be strings"
        if k.as_json() != key:
            return "key is not {problem, target, device, toolchain: {name: version}}"
    except (KeyError, TypeError, AttributeError, ValueError):
        return "key is not {problem, target, device, toolchain: {name: version}}"
    if not isinstance(rec.get("key_id"), str) or rec["key_id"] != k.id:
        return "key_id is not the digest of its key"
    if not isinstance(rec.get("candidate"), str) or not rec["candidate"]:
        return "candidate is not a string"
    cfg = rec.get("config")
    if not isinstance(cfg, dict) or not all(isinstance(n, str) and _scalar(v) for n, v in cfg.items()):
        return "config is not an object of hint values"
    if not isinstance(rec.get("date"), str):
        return "date is not a string"
    for name in ("run", "code", "error", "problem"):
        if name in rec and rec[name] is not None and not isinstance(rec[name], str):
            return f"{name} is not a string"
    for name in ("iqr_s", "q1_s", "q3_s", "min_s", "torch_s"):
        if rec.get(name) is not None and not _num(rec[name]):
            return f"{name} is not a number"
    if rec.get("sizes") is not None and (bad := _sizes_problem(rec["sizes"])):
        return bad
    if kind == "measurement":
        if rec.get("status") not in STATUSES:
            return f"status is not one of {', '.join(STATUSES)}"
        if "anchor" in rec and not isinstance(rec["anchor"], bool):
            return "anchor is not true or false"
    if (kind == "winner" or rec.get("status") == OK) and not (_num(rec.get("median_s")) and rec["median_s"] > 0):
        return "median_s is not a positive number"
    for name in ("previous", "reference"):
        if rec.get(name) is not None and not isinstance(rec[name], dict):
            return f"{name} is not an object"
    return ""


def parse_lines(text: str, why: Counter | None = None, dropped: Counter | None = None) -> tuple:
    """([record], number of lines skipped): a line is skipped if it does not parse or is not a
    well-formed record (`check`); `why` counts the reasons, `dropped` the skipped records per
    key_id (where they name one)."""
    out, skipped = [], 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
            bad = check(rec)
        except ValueError:
            rec, bad = None, "does not parse"
        except RecursionError:
            rec, bad = None, "nested too deep"
        if not bad:
            out.append(rec)
            continue
        skipped += 1
        if why is not None:
            why[bad] += 1
        if dropped is not None and isinstance(rec, dict) and isinstance(rec.get("key_id"), str):
            dropped[rec["key_id"]] += 1
    return out, skipped


class Records:
    """The records of one file, indexed by key. `extra` records (from the cache) are used
    as if they were in the file, without writing it."""

    def __init__(self, path):
        self.path = Path(path)
        self.records, self.skipped = [], 0
        self.why_skipped, self.dropped = Counter(), Counter()
        self.error = ""                  # why the file could not be read ('' if it could, or is absent)
        self._seen = set()
        try:
            text = self.path.read_text(errors="replace") if self.path.exists() else ""
        except OSError as err:
            self.error = f"{self.path}: {err.strerror or err}"
            text = ""
        recs, self.skipped = parse_lines(text, self.why_skipped, self.dropped)
        for r in recs:
            self._add(r)

    def _add(self, rec: dict) -> bool:
        h = sha256(canonical(rec))
        if h in self._seen:
            return False
        self._seen.add(h)
        self.records.append(rec)
        return True

    def add_extra(self, recs) -> int:
        return sum(self._add(r) for r in recs if not check(r))

    def skipped_text(self) -> str:
        """`3 line(s) of PATH skipped (2 does not parse, 1 date is not a string)`; '' if none."""
        if not self.skipped:
            return ""
        why = ", ".join(f"{n} {reason}" for reason, n in self.why_skipped.most_common())
        return f"{self.skipped} line(s) of {self.path} skipped ({why})"

    def writable(self) -> str:
        """Why records cannot be appended to the file ('' if they can); creates nothing that stays."""
        if self.error:
            return self.error
        if self.path.is_dir():
            return f"{self.path} is a directory"
        above = next((d for d in self.path.parents if d.exists()), None)
        if above is not None and not above.is_dir():
            return f"{above} is not a directory"
        if above is not None and above != self.path.parent:     # folders append() will make
            return "" if os.access(above, os.W_OK | os.X_OK) else f"{above}: Permission denied"
        existed = self.path.exists()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.close(fd)
            if not existed:
                os.unlink(self.path)
        except OSError as err:
            return f"{self.path}: {err.strerror or err}"
        return ""

    # --- reading --------------------------------------------------------------------
    def of(self, key_id: str, kind: str | None = None) -> list:
        return [r for r in self.records if r.get("key_id") == key_id and (kind is None or r["kind"] == kind)]

    def measured(self, key_id: str, code: str | None = None) -> dict:
        """{candidate: its latest non-anchor measurement} (a failure counts: it is not retried);
        with `code`, only measurements taken with that render code (select.render_code)."""
        out = {}
        for r in self.of(key_id, "measurement"):
            if not r.get("anchor") and (code is None or r.get("code") == code):
                out[r["candidate"]] = r
        return out

    def latest_timing(self, key_id: str, candidate: str) -> dict | None:
        """The candidate's newest successful measurement (a re-timed winner's anchor included):
        its median and the torch time of the same run, the one ratio worth printing."""
        times = [r for r in self.of(key_id, "measurement") if r["candidate"] == candidate and r.get("status") == OK]
        return max(reversed(times), key=lambda r: r.get("date", "")) if times else None

    def backed(self, win: dict) -> bool:
        """Whether an `ok` measurement of the winner's key, candidate and config exists."""
        return any(r.get("status") == OK and r["candidate"] == win["candidate"] and r["config"] == win["config"]
                   for r in self.of(win["key_id"], "measurement"))

    def unbacked(self, key_id: str) -> list:
        """The key's winner records not backed by an `ok` measurement (ignored: `winner`)."""
        return [r for r in self.of(key_id, "winner") if not self.backed(r)]

    def winner(self, key_id: str) -> dict | None:
        """The key's newest winner by date (records merged from the cache may arrive in the
        file after newer ones) among those backed by an `ok` measurement of the same candidate
        and config; the later line breaks a tie."""
        wins = [r for r in self.of(key_id, "winner") if self.backed(r)]
        return max(reversed(wins), key=lambda r: r.get("date", "")) if wins else None

    def explain_missing(self, key: Key) -> str:
        """Why `key` has no records: the nearest key that has some, and what differs."""
        same = [r for r in self.records if r["key"].get("problem") == key.problem
                and r["key"].get("target") == key.target]
        if not same:
            return "never tuned"
        other = Key.from_json(same[-1]["key"])
        if other.device != key.device:
            return f"tuned on {other.device}, not on this device ({key.device})"
        old, new = dict(other.toolchain), dict(key.toolchain)
        diff = [f"{k} {old.get(k)} -> {new.get(k)}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        return f"tuned with other toolchain versions ({'; '.join(diff[:2])})"

    # --- writing --------------------------------------------------------------------
    def append(self, recs: list) -> int:
        """Append the records not already present; returns how many were written."""
        new = [r for r in recs if self._add(r)]
        if not new:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = "".join(dumps(r) + "\n" for r in new).encode()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_size and not _ends_with_newline(fd):
                data = b"\n" + data              # a torn last line stays on its own line
            os.write(fd, data)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return len(new)


def _ends_with_newline(fd) -> bool:
    size = os.fstat(fd).st_size
    return os.pread(fd, 1, size - 1) == b"\n"


def blob(recs: list) -> bytes:
    """The records of one key as they travel through the cache (sorted: same set, same bytes)."""
    return "".join(sorted(dumps(r) + "\n" for r in recs)).encode()
