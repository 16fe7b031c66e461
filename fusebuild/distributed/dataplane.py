"""The data plane between coordinator and workers: blobs by sha256 in the remote cache.

Nothing is shared but the remote cache (FUSEBUILD_REMOTE_CACHE, Bazel's HTTP protocol,
cache/remote.py): a sender PUTs a file's bytes to `cas/<sha256>` and passes on only the
reference `{"sha256", "size"}`; a receiver GETs it, and accepts it only if it hashes to
the name and has the size (a truncated, corrupt or foreign blob is an error, never an
input or an output). Fetched blobs are kept in the local store (FUSEBUILD_CACHE_DIR), so a
worker fetches the coordinator's templates once, not once per render.

Each side reads its own cache settings: the URL and the authentication header
(FUSEBUILD_REMOTE_CACHE_HEADER) of a worker come from the worker's environment and never
travel in a task. Blobs are stored even when the remote is read-only: a read-only remote
publishes no action records, and a blob without a record names nothing.
"""
from __future__ import annotations

from pathlib import Path

from .. import cache
from ..errors import FusebuildError
from ..fsutil import write_atomic
from ..hashing import sha256


class DataPlaneError(FusebuildError):
    """The remote cache cannot carry a task's data (not configured, unreachable, a bad blob)."""


NO_REMOTE = ("a distributed build moves every input and output through the remote cache, "
             "and none is configured")
NO_REMOTE_VALID = "FUSEBUILD_REMOTE_CACHE=http(s)://host:port/prefix (a Bazel HTTP cache), FUSEBUILD_CACHE on"


class DataPlane:
    def __init__(self, c: cache.Cache):
        if not c.enabled or c.remote is None:
            raise DataPlaneError(NO_REMOTE, valid=NO_REMOTE_VALID)
        self.local, self.remote = c.local, c.remote

    @classmethod
    def from_env(cls, env) -> DataPlane:
        return cls(cache.from_env(env))

    def check(self):
        """Ask the remote once (a lookup that misses): an unreachable cache says so now."""
        self.remote.get("ac", "0" * 64, limit=1 << 20)
        self._alive()

    def _alive(self):
        if not self.remote.active:
            raise DataPlaneError(f"remote cache {self.remote.shown} unavailable: {self.remote.disabled}")

    def push(self, data: bytes) -> dict:
        """Store `data` in the remote CAS; its reference."""
        digest = sha256(data)
        self._alive()
        if digest not in self.remote.present:
            self.remote.put("cas", digest, data)
            self._alive()
        return {"sha256": digest, "size": len(data)}

    def push_files(self, folder, names) -> dict:
        """{name: reference} of files in `folder` (a missing one is an error: nothing half-sent)."""
        refs = {}
        for name in names:
            try:
                data = (Path(folder) / name).read_bytes()
            except OSError as err:
                raise DataPlaneError(f"cannot send {name}: {err.strerror}") from None
            refs[name] = self.push(data)
        return refs

    def fetch(self, ref: dict, what: str = "blob") -> bytes:
        """The verified bytes of `ref`; local store first."""
        digest, size = _ref(ref, what)
        data = self.local.get_blob_safe(digest) if self.local else None
        if data is None:
            self._alive()
            data = self.remote.get("cas", digest, limit=size)
            if data is None:
                self._alive()
                raise DataPlaneError(f"{what} ({digest[:12]}) is not in the remote cache {self.remote.shown}")
            if len(data) != size or sha256(data) != digest:
                raise DataPlaneError(f"{what} from the remote cache does not match its digest {digest[:12]} "
                                     f"(got {len(data)} bytes): refused")
            self.remote.present.add(digest)
            if self.local:
                self.local.put_blob(data)
        return data

    def fetch_files(self, refs: dict, folder) -> dict:
        """Write each {name: reference} into `folder` (atomically); {name: bytes}."""
        out = {}
        for name, ref in refs.items():
            data = self.fetch(ref, name)
            write_atomic(Path(folder) / name, data)
            out[name] = data
        return out


def _ref(ref, what) -> tuple:
    ok = (isinstance(ref, dict) and isinstance(ref.get("sha256"), str) and cache._HEX64.match(ref["sha256"])
          and isinstance(ref.get("size"), int) and ref["size"] >= 0)
    if not ok:
        raise DataPlaneError(f"bad reference for {what}: {ref!r}")
    return ref["sha256"], ref["size"]
