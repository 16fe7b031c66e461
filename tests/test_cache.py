"""cache/__init__.py: the local store and a stage's Action (miss, hit, verification on every
read, corruption discarded and repaired, cache off, default folder), and through real
`doit` the cache shared by two checkouts and a branch switch."""
from __future__ import annotations

import http.server
import json
import threading
import time

import pytest

from fusebuild import cache as C

from conftest import Project, gemm_spec


@pytest.fixture
def local(tmp_path):
    return C.Cache(C.LocalStore(tmp_path / "cache"))


def act(folder, cache, key=None, outputs=("a.txt", "sub/b.bin")):
    return C.Action("compile", folder, key or {"x": 1}, outputs, cache=cache)


def build(folder, cache, **kw):
    """Run one action: restore, or 'run the tool' (write files) and store. True if it hit."""
    a = act(folder, cache, **kw)
    if a.restore():
        return True
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    (folder / "a.txt").write_text("source")
    (folder / "sub/b.bin").write_bytes(b"\x00object")
    a.store_from(folder)
    return False


def outcome(folder):
    return json.loads((folder / ".stages/compile.cache.json").read_text())


def test_miss_then_hit_materializes_identical_files(tmp_path, local):
    assert build(tmp_path / "one", local) is False
    assert outcome(tmp_path / "one")["outcome"] == "miss"
    assert build(tmp_path / "two", local) is True                       # another checkout
    assert (tmp_path / "two/a.txt").read_text() == "source"
    assert (tmp_path / "two/sub/b.bin").read_bytes() == b"\x00object"
    assert outcome(tmp_path / "two")["outcome"] == "local-hit"
    assert build(tmp_path / "three", local, key={"x": 2}) is False      # another key


def test_identical_output_keeps_its_mtime(tmp_path, local):
    build(tmp_path / "one", local)
    before = (tmp_path / "one/a.txt").stat().st_mtime_ns
    time.sleep(0.01)
    assert build(tmp_path / "one", local) is True
    assert (tmp_path / "one/a.txt").stat().st_mtime_ns == before       # early cutoff survives a hit


def blob_paths(cache):
    return sorted((cache.local.root / "cas").rglob("*"), key=str)


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_corrupt_local_blob_is_discarded_and_rebuilt(tmp_path, local, damage, capsys):
    build(tmp_path / "one", local)
    for p in blob_paths(local):
        if p.is_file() and p.read_bytes() == b"\x00object":
            data = p.read_bytes()
            p.write_bytes({"truncate": data[:3], "flip": b"\x01" + data[1:], "empty": b""}[damage])
    assert build(tmp_path / "two", local) is False                      # never used: rebuilt
    assert (tmp_path / "two/sub/b.bin").read_bytes() == b"\x00object"
    rec = outcome(tmp_path / "two")
    assert rec["outcome"] == "miss" and "does not match its hash" in rec["corrupt"][0]
    assert "does not match its hash" in capsys.readouterr().err
    assert build(tmp_path / "three", local) is True                      # the rebuild repaired it


def test_corrupt_or_foreign_action_record_is_discarded(tmp_path, local):
    build(tmp_path / "one", local)
    a = act(tmp_path / "x", local)
    path = local.local._path("ac", a.digest)
    good = path.read_bytes()
    for bad in (good[: len(good) // 2],                                   # truncated JSON
                good.replace(a.digest.encode(), b"0" * 64),                # answers another action
                good.replace(b'"a.txt"', b'"../../evil"')):                # names other files
        path.write_bytes(bad)
        assert build(tmp_path / "two", local) is False
        assert not (tmp_path / "evil").exists()
        assert path.read_bytes() == good                                  # rebuilt and stored again


def test_cache_off_and_default_dir(tmp_path):
    off = C.from_env({"FUSEBUILD_CACHE": "off"})
    assert not off.enabled and build(tmp_path / "one", off) is False
    assert outcome(tmp_path / "one")["outcome"] == "off"
    assert C.default_dir({"XDG_CACHE_HOME": "/x"}) == C.Path("/x/fusebuild")
    assert C.default_dir({"FUSEBUILD_CACHE_DIR": "/y", "XDG_CACHE_HOME": "/x"}) == C.Path("/y")
    assert str(C.default_dir({})).endswith(".cache/fusebuild")


# --- the cache built from the environment, with a remote -------------------------------
class _Recorder(http.server.BaseHTTPRequestHandler):
    seen = []

    def do_GET(self):
        _Recorder.seen.append(("GET", self.path, self.headers.get("Authorization")))
        self.send_response(404)
        self.end_headers()

    def do_PUT(self):
        _Recorder.seen.append(("PUT", self.path, self.headers.get("Authorization")))
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/prefix", _Recorder.seen
    server.shutdown()
    server.server_close()


def test_remote_sends_the_header_from_the_environment_and_readonly_never_puts(tmp_path, recorder):
    url, seen = recorder
    c = C.from_env({"FUSEBUILD_CACHE_DIR": str(tmp_path / "c"), "FUSEBUILD_REMOTE_CACHE": url,
                    "FUSEBUILD_REMOTE_CACHE_HEADER": "Authorization: Bearer t0ken"})
    build(tmp_path / "one", c)
    assert [m for m, _, _ in seen] == ["GET", "PUT", "PUT", "PUT"]       # AC miss, 2 blobs, then AC
    assert seen[0][1].startswith("/prefix/ac/") and seen[1][1].startswith("/prefix/cas/")
    assert seen[-1][1] == seen[0][1]
    assert all(auth == "Bearer t0ken" for _, _, auth in seen)
    seen.clear()
    ro = C.from_env({"FUSEBUILD_CACHE_DIR": str(tmp_path / "d"), "FUSEBUILD_REMOTE_CACHE": url,
                     "FUSEBUILD_REMOTE_CACHE_READONLY": "1"})
    build(tmp_path / "two", ro)
    assert [m for m, _, _ in seen] == ["GET"]
    assert "t0ken" not in json.dumps(ro.describe())


# --- through doit -----------------------------------------------------------------------
@pytest.mark.e2e
@pytest.mark.slow
def test_two_checkouts_and_a_branch_switch_compile_once(project, tmp_path):
    project.spec("one", gemm_spec("one"))
    first = project.doit("build", check=0)
    assert len(first.ran_stage("compile")) == 2 and project.cache_report()["stages"]["compile"]["miss"] == 2
    # a second worktree of the same user (same cache dir), nothing restored: all hits
    other = Project(tmp_path / "worktree2", cache=project.cache)
    other.spec("one", gemm_spec("one"))
    r = other.doit("build", check=0)
    rep = other.cache_report()
    assert rep["hits"] == rep["lookups"] == 8 and rep["stages"]["compile"]["local-hit"] == 2, r.text
    assert "cache hit rate 100% (8/8" in r.text
    for m in (4, 8):
        rel = f"out/one/M{m}_N32_K16/tir-cpu/"
        for f in ("kernel.py", "kernel.o", "kernel.so", "validation.json"):
            assert (other.root / rel / f).read_bytes() == (project.root / rel / f).read_bytes()
    # branch switch: edit the spec, build, switch back: the old results come from the cache
    path = project.root / "specs/one.yaml"
    path.write_text(gemm_spec("one", act="gelu"))
    project.doit("build", check=0)
    assert project.cache_report()["stages"]["compile"]["miss"] == 2
    path.write_text(gemm_spec("one"))
    r = project.doit("build", check=0)
    assert len(r.ran_stage("compile")) == 2                              # doit reruns the tasks...
    assert project.cache_report()["stages"]["compile"]["local-hit"] == 2  # ...the tool does not run


@pytest.mark.e2e
@pytest.mark.slow
def test_corrupt_local_object_is_rebuilt_not_used(project, tmp_path):
    project.spec("one", gemm_spec("one"))
    project.doit("build", check=0)
    damaged = 0
    for blob in (project.cache / "cas").rglob("*"):
        if blob.is_file() and blob.read_bytes()[:4] == b"\x7fELF":       # kernel.o and kernel.so
            blob.write_bytes(blob.read_bytes()[:100])                     # truncated
            damaged += 1
    assert damaged == 4
    other = Project(tmp_path / "worktree2", cache=project.cache)
    other.spec("one", gemm_spec("one"))
    r = other.doit("build", check=0)
    rep = other.cache_report()
    assert rep["stages"]["compile"]["miss"] == 2 and rep["stages"]["assemble"]["miss"] == 2, r.text
    assert len(rep["corrupt"]) == 4 and "corrupt entries discarded" in r.text
    for report in (other.root / "out").rglob("validation.json"):
        assert json.loads(report.read_text())["status"] == "pass"
