"""cache/remote.py: the Bazel-protocol client (a remote that is down, slow or wants a
header; read-only; URL and header parsing), and the remote cache against a REAL server:
nginx with WebDAV PUT on 127.0.0.1 (cache/server.py), one per test.

Runner A builds and uploads; runner B is a fresh clone with an empty local cache and no
restored state. On B, `tvm` and `torch` are made unimportable, so any compile, assemble or
validation that really ran would fail: B's green build proves every result came from the
cache, and the cache report counts it.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fusebuild.cache.remote import Remote, parse_header, redact
from fusebuild.cache.server import NginxCache, free_port, nginx_binary

from conftest import REPO, Project, gemm_spec

# the server tests run real doit builds against nginx; without nginx they skip, saying so
needs_nginx = pytest.mark.skipif(nginx_binary() is None,
                                 reason="nginx is not installed (Debian: apt-get install nginx-light); "
                                        ".ci/run installs it")


def warnings_of(remote):
    seen = []
    remote.warn = seen.append
    return seen


def test_remote_down_warns_once_and_turns_off(tmp_path):
    with socket.socket() as s:                      # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = Remote(f"http://user:secret@127.0.0.1:{port}/cache", timeout=1)
    seen = warnings_of(r)
    assert r.get("ac", "a" * 64) is None
    assert r.put("cas", "b" * 64, b"x") is False
    assert r.get("cas", "c" * 64) is None
    assert len(seen) == 1 and "unavailable" in seen[0] and "secret" not in seen[0]
    assert not r.active


def test_remote_slow_is_bounded_by_the_timeout():
    with socket.socket() as s:                      # accepts connections, never answers
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        r = Remote(f"http://127.0.0.1:{s.getsockname()[1]}", timeout=0.5)
        seen = warnings_of(r)
        start = time.monotonic()
        assert r.get("ac", "a" * 64) is None
        assert r.get("ac", "b" * 64) is None        # already off: no second wait
        assert time.monotonic() - start < 3
        assert len(seen) == 1


def test_header_and_url_parsing():
    assert parse_header("X-Token:  abc ") == ("X-Token", "abc")
    assert parse_header("") is None
    for bad in ("no colon", "A: b\r\nC: d"):
        with pytest.raises(ValueError):
            parse_header(bad)
    assert redact("https://u:p@cache.example:9092/x?q=1") == "https://cache.example:9092/x"
    with pytest.raises(ValueError):
        Remote("ftp://host/x")


# --- against a real server (nginx), through doit ----------------------------------------

WARNING = "warning: remote cache"


@pytest.fixture
def server(tmp_path):
    s = NginxCache(tmp_path / "nginx").start()
    yield s
    s.stop()


def runner(root: Path, server: NginxCache, *specs, poison=False, **env) -> Project:
    p = Project(root)                                  # its own, empty, local cache
    p.env["FUSEBUILD_REMOTE_CACHE"] = server.url
    p.env.update(env)
    for name, act in specs:
        p.spec(name, gemm_spec(name, act=act))
    if poison:
        fake = root.parent / f"{root.name}-poison"
        for mod in ("tvm", "torch"):
            (fake / mod).mkdir(parents=True, exist_ok=True)
            (fake / mod / "__init__.py").write_text(f"raise ImportError('{mod} imported on a cached build')\n")
        p.env["PYTHONPATH"] = f"{fake}:{REPO}"
    return p


def reports(p: Project) -> dict:
    return {str(f.relative_to(p.root)): json.loads(f.read_text()) for f in sorted((p.root / "out").rglob("validation.json"))}


SPECS = [("one", "silu"), ("two", "relu")]


@needs_nginx
@pytest.mark.e2e
@pytest.mark.slow
def test_runner_b_fresh_clone_builds_with_zero_compiles(tmp_path, server):
    a = runner(tmp_path / "a", server, *SPECS)
    ra = a.doit("build", check=0)
    rep = a.cache_report()
    assert rep["stages"]["compile"]["miss"] == 4 and rep["uploaded_entries"] > 0, ra.text
    assert any(f.startswith("ac/") for f in server.files()) and any(f.startswith("cas/") for f in server.files())
    b = runner(tmp_path / "b", server, *SPECS, poison=True)
    rb = b.doit("build", check=0)
    rep = b.cache_report()
    for stage in ("render", "compile", "assemble", "validate"):
        assert rep["stages"][stage]["remote-hit"] == 4, rb.text
        assert rep["stages"][stage]["miss"] == 0
    assert rep["hit_rate"] == 1.0 and rep["uploaded_entries"] == 0
    assert "cache hit rate 100% (16/16" in rb.text
    assert reports(b) == reports(a) and all(r["status"] == "pass" for r in reports(b).values())
    # and B's next build is a no-op
    assert b.doit("build", check=0).ran == []


@needs_nginx
@pytest.mark.e2e
@pytest.mark.slow
def test_corrupt_blob_on_the_server_is_detected_and_rebuilt(tmp_path, server):
    a = runner(tmp_path / "a", server, ("one", "silu"))
    a.doit("build", check=0)
    folder = a.root / "out/one/M8_N32_K16/tir-cpu"
    action = json.loads((folder / ".stages/compile.cache.json").read_text())["action"]
    record = json.loads(server.path("ac", action).read_bytes())
    blob = server.path("cas", record["files"]["kernel.o"]["sha256"])
    good = blob.read_bytes()
    blob.write_bytes(good[: len(good) // 2] + b"garbage")                 # corrupted at rest
    b = runner(tmp_path / "b", server, ("one", "silu"))
    rb = b.doit("build", check=0)
    rep = b.cache_report()
    assert rep["stages"]["compile"] == {"up-to-date": 0, "local-hit": 0, "remote-hit": 1, "miss": 1,
                                        "uncached": 0, "failed": 0}, rb.text
    assert rep["tasks"]["compile:one/M8_N32_K16/tir-cpu"] == "miss"
    assert len(rep["corrupt"]) == 1 and "does not match its hash" in rep["corrupt"][0]
    assert (b.root / "out/one/M8_N32_K16/tir-cpu/kernel.o").read_bytes() == good    # rebuilt, not used
    assert reports(b) == reports(a)
    assert blob.read_bytes() == good                                      # B's upload repaired the server


@needs_nginx
@pytest.mark.e2e
@pytest.mark.slow
def test_server_killed_mid_build_does_not_fail_the_build(tmp_path, server):
    a = runner(tmp_path / "a", server, *SPECS)
    proc = subprocess.Popen([sys.executable, "-m", "doit", "build"], cwd=a.root, env=a.env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not any(f.startswith("cas/") for f in server.files()):          # the first upload landed
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
        time.sleep(0.005)
    server.kill()                                                         # SIGKILL, as a crash
    out = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, out
    assert out.count(WARNING) == 1, out                                   # one warning, not one per task
    rep = a.cache_report()
    assert rep["remote_errors"] and rep["stages"]["compile"]["miss"] == 4
    assert all(r["status"] == "pass" for r in reports(a).values()) and len(reports(a)) == 4


@needs_nginx
@pytest.mark.e2e
@pytest.mark.slow
def test_read_only_mode_uploads_nothing_but_still_reads(tmp_path, server):
    ro = runner(tmp_path / "ro", server, ("one", "silu"), FUSEBUILD_REMOTE_CACHE_READONLY="1")
    r = ro.doit("build", check=0)
    assert server.files() == [] and ro.cache_report()["uploaded_entries"] == 0, r.text
    assert "(read-only)" in r.text
    a = runner(tmp_path / "a", server, ("one", "silu"))                   # a trusted build fills it
    a.doit("build", check=0)
    before = server.files()
    ro2 = runner(tmp_path / "ro2", server, ("one", "silu"), poison=True, FUSEBUILD_REMOTE_CACHE_READONLY="1")
    ro2.doit("build", check=0)
    assert ro2.cache_report()["hit_rate"] == 1.0 and server.files() == before


@needs_nginx
@pytest.mark.e2e
@pytest.mark.slow
def test_server_down_from_the_start_builds_locally_with_one_warning(tmp_path):
    down = NginxCache(tmp_path / "never-started")
    down.port = free_port()                                               # nothing listens there
    p = runner(tmp_path / "p", down, ("one", "silu"))
    r = p.doit("build", check=0)
    assert r.text.count(WARNING) == 1, r.text
    assert p.cache_report()["stages"]["compile"]["miss"] == 2
