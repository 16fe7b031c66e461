"""A misbehaving remote cache (issue 15, item 6): the per-request deadline bounds the status
line and headers, not only the body, and a blob is read up to the client's own maximum,
never the size an untrusted action record claims. Real sockets, servers in threads."""
from __future__ import annotations

import json
import socket
import threading
import time
import tracemalloc

from fusebuild import cache as C
from fusebuild.cache.remote import Remote


class Server:
    """A TCP server in a thread; `respond(conn, request_bytes)` answers each connection."""

    def __init__(self, respond):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.respond, self.requests, self.stop = respond, [], threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    request = conn.recv(65536)
                    self.requests.append(request.split(b"\r\n", 1)[0].decode())
                    self.respond(conn, request, self.stop)
                except OSError:
                    pass

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


def drip(text: bytes, every: float):
    def respond(conn, request, stop):
        for byte in text:
            if stop.is_set():
                return
            conn.sendall(bytes([byte]))
            time.sleep(every)
    return respond


def test_a_server_dripping_its_headers_cannot_stall_past_the_timeout():
    server = Server(drip(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nX-Slow: "
                         + b"a" * 200 + b"\r\n\r\n", every=0.2))
    try:
        r = Remote(server.url, timeout=1.0)
        seen = []
        r.warn = seen.append
        start = time.monotonic()
        assert r.get("ac", "a" * 64) is None
        took = time.monotonic() - start
        assert took < 2.5, took                      # the status line arrived, the headers never finished
        assert len(seen) == 1 and "unavailable" in seen[0] and not r.active
    finally:
        server.close()


def test_a_server_dripping_the_status_line_is_bounded_too():
    server = Server(drip(b"HTTP/1.1 200 OK\r\n\r\n", every=0.5))
    try:
        r = Remote(server.url, timeout=1.0)
        r.warn = lambda msg: None
        start = time.monotonic()
        assert r.get("cas", "b" * 64) is None
        assert time.monotonic() - start < 2.5
    finally:
        server.close()


def endless(conn, request, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
    chunk = b"\0" * 65536
    while not stop.is_set():
        conn.sendall(chunk)


def test_a_body_is_read_up_to_the_clients_maximum():
    server = Server(endless)
    try:
        r = Remote(server.url, timeout=5.0, max_blob=1 << 20)
        seen = []
        r.warn = seen.append
        tracemalloc.start()
        assert r.get("cas", "c" * 64) is None
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 8 << 20, peak
        assert "larger than 1048576 bytes" in seen[0]
    finally:
        server.close()


def test_a_record_claiming_a_terabyte_is_never_fetched(tmp_path):
    """The AC record is untrusted: a blob it says is 2^40 bytes is not requested at all."""
    key = {"x": 1}
    digest = C.action_digest({"stage": "compile", **key})
    record = json.dumps({"fusebuild_cache": C.FORMAT, "action": digest, "stage": "compile",
                         "files": {"a.txt": {"sha256": "d" * 64, "size": 1 << 40}}}).encode()

    def respond(conn, request, stop):
        if b"/ac/" in request.split(b"\r\n", 1)[0]:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(record) + record)
        else:
            endless(conn, request, stop)
    server = Server(respond)
    try:
        c = C.from_env({"FUSEBUILD_CACHE_DIR": str(tmp_path / "c"), "FUSEBUILD_REMOTE_CACHE": server.url})
        c.remote.warn = lambda msg: None
        act = C.Action("compile", tmp_path / "out", key, ("a.txt",), cache=c)
        tracemalloc.start()
        assert act.restore() is False
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 8 << 20
        assert [r.split()[1].split("/")[1] for r in server.requests] == ["ac"]      # no CAS request
        assert any("1099511627776-byte blob" in m for m in act._corrupt_msgs)
    finally:
        server.close()


def test_max_blob_comes_from_the_environment(tmp_path):
    c = C.from_env({"FUSEBUILD_CACHE_DIR": str(tmp_path), "FUSEBUILD_REMOTE_CACHE": "http://127.0.0.1:9",
                    "FUSEBUILD_REMOTE_CACHE_MAX_BLOB": "4096"})
    assert c.remote.max_blob == 4096
    assert C.from_env({"FUSEBUILD_CACHE_DIR": str(tmp_path), "FUSEBUILD_REMOTE_CACHE": "http://h:1"}).remote.max_blob \
        == 256 << 20
