"""A throwaway remote cache server on loopback: nginx with WebDAV PUT, for tests, the
benchmark, and trying the remote cache by hand.

    with NginxCache(tmp_dir) as server:      # listens on 127.0.0.1:<free port>
        os.environ["FUSEBUILD_REMOTE_CACHE"] = server.url
        ...
    server.files()  -> stored paths (relative to the root, e.g. "cas/<sha256>")

nginx runs in the foreground of its own process (not daemonized), with every path
(config, pid, logs, temp, storage root) inside `folder`. It only ever binds 127.0.0.1.
`stop()` ends it; `kill()` ends it abruptly (SIGKILL to its process group), as a crashed
server would.

By hand: `python -m fusebuild.cache.server /tmp/fbcache` prints the URL and serves until
Ctrl-C.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

CONF = """\
worker_processes 1;
daemon off;
master_process on;
{user}
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/tmp/body;
    proxy_temp_path {folder}/tmp/proxy;
    fastcgi_temp_path {folder}/tmp/fastcgi;
    uwsgi_temp_path {folder}/tmp/uwsgi;
    scgi_temp_path {folder}/tmp/scgi;
    client_max_body_size 1g;
    server {{
        listen 127.0.0.1:{port};
        root {folder}/root;
        location / {{
            dav_methods PUT;
            create_full_put_path on;
            dav_access user:rw group:r all:r;
        }}
    }}
}}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
                                          if os.access(p, os.X_OK)), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NginxCache:
    def __init__(self, folder):
        self.folder = Path(folder).resolve()
        self.root = self.folder / "root"
        self.proc = None
        self.port = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, tries: int = 5):
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed (Debian: apt-get install nginx-light)")
        self.root.mkdir(parents=True, exist_ok=True)
        (self.folder / "tmp").mkdir(exist_ok=True)
        # as root, nginx's workers drop to `nobody` unless told otherwise; keep the caller's user
        user = "user root root;" if os.geteuid() == 0 else ""
        for _ in range(tries):
            self.port = free_port()
            conf = self.folder / "nginx.conf"
            conf.write_text(CONF.format(folder=self.folder, port=self.port, user=user))
            log = open(self.folder / "stderr.log", "w")
            cmd = [binary, "-c", str(conf), "-p", str(self.folder), "-e", str(self.folder / "error.log")]
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
            if self._wait_ready():
                return self
            self.stop()
        errors = self.folder / "error.log"
        raise RuntimeError(f"nginx did not start: {(self.folder / 'stderr.log').read_text()[-2000:]}"
                           f"{errors.read_text()[-2000:] if errors.exists() else ''}")

    def _wait_ready(self, seconds: float = 10.0) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                urllib.request.urlopen(f"{self.url}/ready-check", timeout=1).close()
                return True
            except urllib.error.HTTPError:          # 404: it is serving
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def files(self) -> list:
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())

    def path(self, kind: str, digest: str) -> Path:
        return self.root / kind / digest

    def _signal(self, sig):
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)         # nginx's own process group (start_new_session)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self):
        self._signal(signal.SIGTERM)

    def kill(self):
        self._signal(signal.SIGKILL)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/fusebuild-cache-server")
    with NginxCache(folder) as server:
        print(f"export FUSEBUILD_REMOTE_CACHE={server.url}   # storage: {server.root}", flush=True)
        try:
            server.proc.wait()
        except KeyboardInterrupt:
            pass
