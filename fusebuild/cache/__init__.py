"""Content-addressed cache of stage results, local and (optionally) remote.

  __init__.py  the stores and one stage's view of them (`Action`)
  remote.py    the Bazel HTTP remote-cache client
  report.py    hits and misses per stage, at the end of a build
  server.py    a real nginx WebDAV cache server on loopback (tests, benchmarks)


Model (Bazel's): an *action* is one stage of one artifact. Its digest is the sha256 of a
JSON key naming everything the result depends on: the stage, the target, the toolchain
versions, the digest of fusebuild's code for that stage, flags/hints/seed, and the sha256
of every input file (see plan/keys.py). Two stores:
  AC   action digest -> record {"files": {name: {"sha256", "size"}}}   (small JSON)
  CAS  sha256 of a blob -> the blob's bytes
A stage looks its action up before running its tool. Hit: the files are written into the
artifact folder (each atomically, and left alone if already identical, so doit's early
cutoff still works) and the tool is skipped. Miss: the tool runs, then its outputs are
stored (blobs first, then the record, so a record never names a missing blob).

Local store: `$FUSEBUILD_CACHE_DIR`, default `$XDG_CACHE_HOME/fusebuild` or
`~/.cache/fusebuild`, shared by every checkout and worktree of the user:
`<dir>/ac/<2 hex>/<digest>` and `<dir>/cas/<2 hex>/<sha256>`, written via temporary
name + rename (safe for concurrent builds). `FUSEBUILD_CACHE=off` turns all caching off.

Remote store (remote.py): `FUSEBUILD_REMOTE_CACHE=<url>`; lookups go local first, then
remote (a remote hit is copied into the local store); results are uploaded unless
`FUSEBUILD_REMOTE_CACHE_READONLY=1` (for untrusted builds such as pull requests).

Nothing read is trusted: a blob must hash to its name, a record must parse, name the
action it answers and list exactly the files the stage writes. Anything else is counted
as corrupt, deleted (locally), reported once, and the stage rebuilds; a rebuild uploads
the good blob, which repairs a corrupt remote entry. A corrupt local entry that cannot be
deleted (a read-only cache) is recorded as `stuck`: the build still rebuilds the stage,
and fails at its end with one line saying so (engine/faults.cache_error).

Each stage's outcome (local-hit, remote-hit, miss, off) is written to
`.stages/<stage>.cache.json` in the artifact folder; report.py sums them up.
"""
from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..fsutil import write_atomic, write_json
from ..hashing import canonical, sha256
from .remote import Remote, parse_header

FORMAT = 1                              # bump to invalidate every entry ever written
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")

ENV_CACHE = "FUSEBUILD_CACHE"                           # "off" disables caching
ENV_DIR = "FUSEBUILD_CACHE_DIR"
ENV_REMOTE = "FUSEBUILD_REMOTE_CACHE"                   # http(s)://host:port/prefix
ENV_READONLY = "FUSEBUILD_REMOTE_CACHE_READONLY"        # 1/true/yes: never upload
ENV_HEADER = "FUSEBUILD_REMOTE_CACHE_HEADER"            # "Authorization: Bearer ..."
ENV_TIMEOUT = "FUSEBUILD_REMOTE_CACHE_TIMEOUT"          # seconds per request, default 5
ENV_MAX_BLOB = "FUSEBUILD_REMOTE_CACHE_MAX_BLOB"        # bytes: the largest blob read from the remote
MAX_BLOB = 256 << 20


def action_digest(key: dict) -> str:
    return sha256(canonical({"fusebuild_cache": FORMAT, **key}))


def default_dir(env=os.environ) -> Path:
    if env.get(ENV_DIR):
        return Path(env[ENV_DIR]).expanduser()
    base = env.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(base) / "fusebuild"


def _truthy(text) -> bool:
    return str(text or "").strip().lower() in ("1", "true", "yes", "on")


def _warn(msg: str):
    print(f"fusebuild cache: {msg}", file=sys.stderr, flush=True)


# --- the local store -------------------------------------------------------------------
class LocalStore:
    def __init__(self, root):
        self.root = Path(root)

    def _path(self, kind: str, digest: str) -> Path:
        return self.root / kind / digest[:2] / digest

    def _read(self, kind, digest):
        try:
            return self._path(kind, digest).read_bytes()
        except OSError:
            return None

    def _write(self, kind, digest, data: bytes):
        path = self._path(kind, digest)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError as err:                  # a full or read-only cache must not fail a build
            _warn(f"cannot write {path}: {err}")

    def discard(self, kind, digest) -> str | None:
        """Delete an entry; None, or why it could not be deleted (a read-only cache)."""
        path = self._path(kind, digest)
        try:
            path.unlink(missing_ok=True)
        except OSError as err:
            return f"{path}: {err.strerror or err}"
        return None

    def get_blob(self, digest: str) -> bytes | None:
        """The blob, verified by hash; a corrupt or truncated one is deleted and None returned."""
        data = self._read("cas", digest)
        if data is not None and sha256(data) != digest:
            stuck = self.discard("cas", digest)
            if stuck:
                raise Corrupt(f"local blob {digest[:12]} does not match its hash and cannot be deleted ({stuck})",
                              stuck=stuck)
            raise Corrupt(f"local blob {digest[:12]} does not match its hash (deleted)")
        return data

    def put_blob(self, data: bytes) -> str:
        digest = sha256(data)
        if self.get_blob_safe(digest) is None:          # absent, or corrupt (then deleted)
            self._write("cas", digest, data)
        return digest

    def get_blob_safe(self, digest):
        try:
            return self.get_blob(digest)
        except Corrupt:
            return None

    def get_record(self, action: str) -> bytes | None:
        return self._read("ac", action)

    def put_record(self, action: str, raw: bytes):
        self._write("ac", action, raw)


class Corrupt(Exception):
    def __init__(self, message: str, stuck: str | None = None):
        super().__init__(message)
        self.stuck = stuck          # a corrupt entry that could not be deleted (read-only cache)


def make_record(action: str, stage: str, files: dict) -> bytes:
    return json.dumps({"fusebuild_cache": FORMAT, "action": action, "stage": stage,
                       "files": {n: {"sha256": sha256(b), "size": len(b)} for n, b in sorted(files.items())}},
                      sort_keys=True).encode()


def check_record(raw: bytes, action: str, outputs) -> dict:
    """The record's {name: {sha256, size}} if it answers `action` with exactly `outputs`."""
    try:
        rec = json.loads(raw)
        files = rec["files"]
        ok = (rec.get("fusebuild_cache") == FORMAT and rec.get("action") == action
              and set(files) == set(outputs)
              and all(_HEX64.match(f["sha256"]) and isinstance(f["size"], int) and f["size"] >= 0
                      for f in files.values()))
    except (ValueError, KeyError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise Corrupt(f"action record {action[:12]} is malformed or answers another action")
    return files


# --- configuration and the per-process cache ---------------------------------------------
@dataclass
class Cache:
    local: LocalStore | None
    remote: Remote | None = None

    @property
    def enabled(self) -> bool:
        return self.local is not None

    def describe(self) -> dict:
        d = {"enabled": self.enabled, "local": str(self.local.root) if self.local else None, "remote": None}
        if self.remote:
            d["remote"] = {"url": self.remote.shown, "mode": "read-only" if self.remote.readonly else "read-write",
                           "error": self.remote.disabled, "requests": dict(self.remote.stats)}
        return d


def from_env(env=os.environ) -> Cache:
    if str(env.get(ENV_CACHE, "")).strip().lower() in ("off", "0", "false", "no"):
        return Cache(None)
    cache = Cache(LocalStore(default_dir(env)))
    url = env.get(ENV_REMOTE, "").strip()
    if url:
        try:
            timeout = float(env.get(ENV_TIMEOUT) or 5.0)
            max_blob = int(env.get(ENV_MAX_BLOB) or MAX_BLOB)
            if not (timeout > 0 and max_blob > 0):
                raise ValueError(f"{ENV_TIMEOUT} and {ENV_MAX_BLOB} must be positive")
            cache.remote = Remote(url, header=parse_header(env.get(ENV_HEADER)),
                                  readonly=_truthy(env.get(ENV_READONLY)), timeout=timeout, max_blob=max_blob,
                                  warn=_warn)
        except ValueError as err:
            _warn(f"remote cache not used: {err}")
    return cache


_CACHE = None


def get() -> Cache:
    """The process's cache, configured from the environment on first use."""
    global _CACHE
    if _CACHE is None:
        _CACHE = from_env()
    return _CACHE


# --- one stage of one artifact -------------------------------------------------------------
class Action:
    """The cache's view of one stage run:

        act = Action("compile", a.dir, key, outputs)
        if act.restore():        # hit: outputs are in place, skip the tool
            return
        ...run the tool, writing `outputs` into a folder...
        act.store_from(folder)   # miss: keep the result for next time

    `outputs` are file names relative to the artifact folder.
    """

    def __init__(self, stage: str, folder, key: dict, outputs, cache: Cache | None = None):
        self.stage, self.folder, self.outputs = stage, Path(folder), tuple(outputs)
        self.cache = cache or get()
        self.digest = action_digest({"stage": stage, **key})
        self.record_path = self.folder / ".stages" / f"{stage}.cache.json"
        self.record_path.unlink(missing_ok=True)        # no stale outcome from an earlier run
        self._t0 = time.perf_counter()
        self._corrupt_msgs, self._stuck = [], []

    def restore(self, rewrite=None) -> bool:
        """Hit: write the outputs into the folder and return True. `rewrite(name, data) ->
        data` may change a restored file before it is written (the cache entry itself is
        left as stored): validate re-stamps the identity of the artifact being built into
        a report that another artifact with the same content may have stored."""
        c = self.cache
        if not c.enabled:
            return False
        files = self._lookup_local()
        source = "local-hit"
        if files is None and c.remote is not None and c.remote.active:
            files, source = self._lookup_remote(), "remote-hit"
        if files is None:
            return False
        for name in self.outputs:
            data = rewrite(name, files[name]) if rewrite is not None else files[name]
            write_atomic(self.folder / name, data, only_if_changed=True)
        self._note(source, bytes=sum(len(b) for b in files.values()))
        return True

    def store_from(self, folder) -> None:
        c = self.cache
        if not c.enabled:
            self._note("off")
            return
        files = {n: (Path(folder) / n).read_bytes() for n in self.outputs}
        self.store(files)

    def store(self, files: dict) -> None:
        c = self.cache
        if not c.enabled:
            self._note("off")
            return
        for data in files.values():
            c.local.put_blob(data)
        raw = make_record(self.digest, self.stage, files)
        c.local.put_record(self.digest, raw)
        uploaded = 0
        r = c.remote
        if r is not None and r.active and not r.readonly:
            for data in files.values():
                uploaded += r.put("cas", sha256(data), data)
            if r.active:
                uploaded += r.put("ac", self.digest, raw)
        self._note("miss", uploaded=uploaded)

    # --- internals ----------------------------------------------------------------
    def _lookup_local(self):
        local = self.cache.local
        raw = local.get_record(self.digest)
        if raw is None:
            return None
        try:
            entries = check_record(raw, self.digest, self.outputs)
            files = {}
            for name, e in entries.items():
                data = local.get_blob(e["sha256"])
                if data is None:
                    return None                                 # evicted blob: a miss, not corrupt
                files[name] = data
            return files
        except Corrupt as err:
            stuck = local.discard("ac", self.digest) or err.stuck
            if stuck:
                self._stuck.append(stuck)
            self._corrupt(f"{err}; {self.stage} rebuilds")
            return None

    def _lookup_remote(self):
        local, r = self.cache.local, self.cache.remote
        raw = r.get("ac", self.digest, limit=1 << 20)
        if raw is None:
            return None
        try:
            entries = check_record(raw, self.digest, self.outputs)
        except Corrupt as err:
            self._corrupt(f"remote {err}; {self.stage} rebuilds")
            return None
        files = {}
        for name, e in entries.items():
            data = local.get_blob_safe(e["sha256"])
            if data is None:
                if e["size"] > r.max_blob:          # never allocate what an untrusted record claims
                    self._corrupt(f"remote record {self.digest[:12]} names a {e['size']}-byte blob ({name}), above "
                                  f"{ENV_MAX_BLOB}={r.max_blob}; {self.stage} rebuilds")
                    return None
                data = r.get("cas", e["sha256"], limit=e["size"])
                if data is None:
                    return None
                if sha256(data) != e["sha256"]:
                    self._corrupt(f"remote blob {e['sha256'][:12]} ({name}) does not match its hash; "
                                  f"{self.stage} rebuilds")
                    return None
                local.put_blob(data)
            files[name] = data
        local.put_record(self.digest, raw)
        return files

    def _corrupt(self, msg: str):
        self._corrupt_msgs.append(msg)
        _warn(msg)

    def _note(self, outcome: str, **extra):
        rec = {"outcome": outcome, "action": self.digest, "seconds": round(time.perf_counter() - self._t0, 4),
               **extra}
        if self._corrupt_msgs:
            rec["corrupt"] = self._corrupt_msgs
        if self._stuck:
            rec["stuck"] = self._stuck
        r = self.cache.remote
        if r is not None and r.disabled:
            rec["remote_error"] = r.disabled
        write_json(self.record_path, rec)
