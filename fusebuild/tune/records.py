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
A key's winner is its newest winner record by date.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

from ..hashing import canonical, sha256
from .problem import Key

FORMAT = 1
KINDS = ("measurement", "winner")
OK = "ok"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def dumps(record: dict) -> str:
    return canonical(record).decode()


def parse_lines(text: str) -> tuple:
    """([record], number of lines skipped)."""
    out, skipped = [], 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
            ok = (isinstance(rec, dict) and rec.get("format") == FORMAT and rec.get("kind") in KINDS
                  and isinstance(rec.get("key"), dict) and isinstance(rec.get("config"), dict))
        except ValueError:
            ok = False
        if ok:
            out.append(rec)
        else:
            skipped += 1
    return out, skipped


class Records:
    """The records of one file, indexed by key. `extra` records (from the cache) are used
    as if they were in the file, without writing it."""

    def __init__(self, path):
        self.path = Path(path)
        self.records, self.skipped = [], 0
        self._seen = set()
        if self.path.exists():
            recs, self.skipped = parse_lines(self.path.read_text(errors="replace"))
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
        return sum(self._add(r) for r in recs)

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

    def winner(self, key_id: str) -> dict | None:
        """The key's newest winner by date (records merged from the cache may arrive in the
        file after newer ones); the later line breaks a tie."""
        wins = self.of(key_id, "winner")
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
