"""HTTP client for a remote build cache speaking Bazel's HTTP remote cache protocol.

The protocol is two key-value namespaces under one base URL:
  GET/PUT <url>/ac/<sha256>    action cache: an action digest -> a small record
  GET/PUT <url>/cas/<sha256>   content-addressed store: a blob's sha256 -> the blob
GET answers 200 with the body or 404 for a miss; PUT stores the body. bazel-remote and
nginx with WebDAV (`dav_methods PUT; create_full_put_path on;`) both serve it. fusebuild's
AC records are JSON, not Bazel's ActionResult protobuf: bazel-remote needs
`--disable_http_ac_validation` (nginx stores anything).

The remote is an accelerator, never a dependency: any error (refused connection, timeout,
an unexpected status such as 401/500) prints ONE warning, turns the remote off for the
rest of this process, and the build goes on with the local cache. Every request is bounded
by `timeout` seconds in total: connect, send, the status line, the headers and the whole
body. urllib's own timeout bounds each socket read, so a server dripping one byte a
second would never trip it; here every read of the connection's socket gets the time left
to the request's deadline (`_DeadlineSocket`), so a slow server costs at most `timeout`
once. (Name resolution is not a socket read and is not bounded this way.)

Nothing read from the remote is trusted: callers verify every blob's hash, and a body is
read up to a limit the client sets (`max_blob`, FUSEBUILD_REMOTE_CACHE_MAX_BLOB), never the
size an untrusted action record claims: a record claiming 2^40 bytes costs at most that.

The optional header (e.g. `Authorization: Bearer ...`) comes from the environment only,
and is never printed; neither is any user:password in the URL.

Read-only means no action records are published; a blob (CAS) may still be stored by a
caller that needs it there (a distributed build moves its inputs that way; fusebuild's own
stages never upload anything to a read-only remote). A blob this process stored, or read
and verified (the caller adds it to `present`), is known to be there and is not sent again.
"""
from __future__ import annotations

import http.client
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

KINDS = ("ac", "cas")


class RemoteError(Exception):
    pass


def redact(url: str) -> str:
    """The URL without user:password, for messages and reports."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def parse_header(text: str | None):
    """'Name: value' -> (name, value); None/empty -> None. Raises ValueError on bad text."""
    if not text:
        return None
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or any(c in text for c in "\r\n"):
        raise ValueError("expected 'Name: value' on one line")
    return name.strip(), value.strip()


class Remote:
    """One remote cache for one process. `get`/`put` never raise: errors disable the remote."""

    def __init__(self, url: str, *, header=None, readonly: bool = False, timeout: float = 5.0,
                 max_blob: int = 256 << 20, warn=None):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"remote cache URL must be http(s)://host[:port][/prefix], got {redact(url)!r}")
        self.base = url.rstrip("/")
        self.shown = redact(url)
        self.header = header
        self.readonly = readonly
        self.timeout = timeout
        self.max_blob = max_blob
        self.disabled = None           # reason, once an error turned the remote off
        self.warn = warn or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.stats = {"get": 0, "hit": 0, "put": 0, "bytes_down": 0, "bytes_up": 0}
        self.present = set()           # blob digests known to be stored (sent, or read and verified)

    @property
    def active(self) -> bool:
        return self.disabled is None

    def get(self, kind: str, digest: str, *, limit: int | None = None) -> bytes | None:
        """The stored bytes, or None for a miss, an error, or a disabled remote."""
        if not self.active:
            return None
        self.stats["get"] += 1
        try:
            status, body = self._request("GET", kind, digest, None, limit or self.max_blob)
        except RemoteError as err:
            self._disable(str(err))
            return None
        if status == 404:
            return None
        if status != 200:
            self._disable(f"GET /{kind}/ answered HTTP {status}")
            return None
        self.stats["hit"] += 1
        self.stats["bytes_down"] += len(body)
        return body

    def put(self, kind: str, digest: str, data: bytes) -> bool:
        """Store bytes; False if not sent: an action record to a read-only remote, a blob
        already known to be there, a disabled remote, or it failed (then disabled)."""
        if (self.readonly and kind == "ac") or not self.active or (kind == "cas" and digest in self.present):
            return False
        try:
            status, _ = self._request("PUT", kind, digest, data, 1 << 16)
        except RemoteError as err:
            self._disable(str(err))
            return False
        if status not in (200, 201, 204):
            self._disable(f"PUT /{kind}/ answered HTTP {status}")
            return False
        self.stats["put"] += 1
        self.stats["bytes_up"] += len(data)
        if kind == "cas":
            self.present.add(digest)
        return True

    # --- internals ------------------------------------------------------------------
    def _disable(self, reason: str):
        if self.disabled is None:
            self.disabled = reason
            self.warn(f"warning: remote cache {self.shown} unavailable ({reason}); "
                      f"continuing with the local cache only for the rest of this build")

    def _request(self, method, kind, digest, data, limit):
        assert kind in KINDS and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)
        req = urllib.request.Request(f"{self.base}/{kind}/{digest}", data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/octet-stream")
        if self.header:
            req.add_header(*self.header)
        deadline = time.monotonic() + self.timeout
        opener = urllib.request.build_opener(_DeadlineHTTP(deadline), _DeadlineHTTPS(deadline))
        try:
            with opener.open(req, timeout=self.timeout) as resp:
                size = resp.headers.get("Content-Length")
                if size is not None and size.strip().isdigit() and int(size) > limit:
                    raise RemoteError(f"{method} /{kind}/: response of {int(size)} bytes is larger than {limit}")
                return resp.status, _read_bounded(resp, limit, deadline)
        except urllib.error.HTTPError as err:
            err.close()
            return err.code, b""
        except (TimeoutError, urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as err:
            why = getattr(err, "reason", err)
            raise RemoteError(f"{method} /{kind}/: {type(why).__name__}: {why}") from None


class _DeadlineSocket:
    """A connected socket whose every read and send waits at most until `deadline`.

    http.client reads the status line and headers through `makefile("rb")`, a buffered
    reader over `recv_into`; here each `recv_into` (and send) first sets the socket's
    timeout to the time left, so the whole response, not each read, is bounded."""

    def __init__(self, sock, deadline: float):
        self._sock, self._deadline = sock, deadline

    def _left(self) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request's deadline passed")
        return left

    def recv_into(self, buf, *args):
        self._sock.settimeout(self._left())
        return self._sock.recv_into(buf, *args)

    def recv(self, n, *args):
        self._sock.settimeout(self._left())
        return self._sock.recv(n, *args)

    def sendall(self, data, *args):
        self._sock.settimeout(self._left())
        return self._sock.sendall(data, *args)

    def makefile(self, mode="r", buffering=None, **kwargs):
        import io
        if "b" not in mode or "w" in mode:
            return self._sock.makefile(mode, buffering, **kwargs)
        # as socket.makefile does: the reader holds a reference, so closing the connection
        # (urllib does, right after the headers) keeps the descriptor until the body is read
        self._sock._io_refs += 1
        return io.BufferedReader(socket.SocketIO(self, "rb"), buffering or io.DEFAULT_BUFFER_SIZE)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def _deadline_connection(base, deadline):
    class Connection(base):
        def connect(self):
            self.timeout = max(0.001, deadline - time.monotonic())
            super().connect()
            self.sock = _DeadlineSocket(self.sock, deadline)
    return Connection


class _DeadlineHTTP(urllib.request.HTTPHandler):
    def __init__(self, deadline):
        super().__init__()
        self.connection = _deadline_connection(http.client.HTTPConnection, deadline)

    def http_open(self, req):
        return self.do_open(self.connection, req)


class _DeadlineHTTPS(urllib.request.HTTPSHandler):
    def __init__(self, deadline):
        super().__init__()
        self.connection = _deadline_connection(http.client.HTTPSConnection, deadline)

    def https_open(self, req):
        return self.do_open(self.connection, req, context=self._context)


def _read_bounded(resp, limit, deadline) -> bytes:
    chunks, size = [], 0
    while True:
        if time.monotonic() > deadline:
            raise RemoteError("timed out reading the response")
        chunk = resp.read1(1 << 16)          # returns after one socket read: the deadline holds
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise RemoteError(f"response larger than {limit} bytes")
        chunks.append(chunk)
