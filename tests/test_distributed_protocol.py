"""The coordinator <-> worker protocol in one process: no Dask, no network.

The cluster is replaced by a stand-in that hands each payload (a JSON string) to
`worker.run` directly, and the remote cache by a dictionary; the coordinator and the
"worker" have separate local stores and separate folders. The real stage code runs on
both sides (tir-cpu: TVM, LLVM). What is checked: the outputs are the bytes a local build
writes, every payload is text that names no path of the coordinator, and a blob that does
not match its digest is never accepted.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import gemm_spec

from fusebuild import cache
from fusebuild.distributed import coordinator, dataplane, placement, worker
from fusebuild.distributed import payload as P
from fusebuild.distributed.cluster import TaskError
from fusebuild.plan.project import Project
from fusebuild.run import stages

pytestmark = pytest.mark.slow


class MemoryRemote:
    """The remote cache's client interface, over a dict."""
    shown, readonly, disabled, active = "memory", False, None, True

    def __init__(self):
        self.store, self.present = {}, set()

    def get(self, kind, digest, limit=None):
        return self.store.get((kind, digest))

    def put(self, kind, digest, data):
        self.store[(kind, digest)] = data
        return True


class StandIn:
    """The cluster: every worker offers everything; tasks run here, through JSON text."""
    address = "stand-in"

    def __init__(self):
        self.sent = []

    def choose(self, info, stage):
        return placement.needs(info, stage)[0]

    def submit(self, payload, need, what):
        return payload

    def result(self, payload, need, what):
        text = P.dumps(payload)
        self.sent.append(text)
        out = json.loads(worker.run(text))
        if out.get("error"):
            raise TaskError(f"{what}: {out['error']}")
        return out

    def run(self, payload, need, what):
        return self.result(payload, need, what)


@pytest.fixture
def sides(tmp_path, monkeypatch):
    remote = MemoryRemote()
    coordinator_cache = cache.Cache(cache.LocalStore(tmp_path / "coordinator-cache"), remote)
    worker_cache = cache.Cache(cache.LocalStore(tmp_path / "worker-cache"), remote)
    monkeypatch.setattr(cache, "_CACHE", coordinator_cache)
    monkeypatch.setattr(dataplane.DataPlane, "from_env", classmethod(lambda cls, env: cls(worker_cache)))
    return remote


def build(project, actions) -> dict:
    """Every stage of every artifact in order, with the given actions; {artifact: result}."""
    results = {}
    for a in project.artifacts:
        fails = [actions[s](project, a) for s in ("render", "compile", "assemble")]
        results[a.id] = fails + [actions["validate"](project, a)]
    return results


def files(out: Path) -> dict:
    return {str(f.relative_to(out)): f.read_bytes() for f in sorted(out.rglob("*"))
            if f.is_file() and ".stages" not in f.parts and f.name != "validation.json"}


def test_a_build_through_the_protocol_writes_what_a_local_build_writes(tmp_path, sides, monkeypatch):
    monkeypatch.setenv("FUSEBUILD_REMOTE_CACHE_HEADER", "Authorization: Bearer s3cret-token")
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "g.yaml").write_text(gemm_spec("g") + "targets: [tir-cpu, mlir-cpu]\n")
    local = Project(tmp_path / "specs", tmp_path / "local" / "out")
    coordinator_cache, cache._CACHE = cache._CACHE, cache.Cache(None)     # the local build: no cache
    build(local, {s: getattr(stages, s) for s in stages.STAGES})
    cache._CACHE = coordinator_cache

    class Stand(coordinator.ClusterProject):
        @property
        def _loaded(self):
            self.cluster, self.plane = stand_in, dataplane.DataPlane(cache.get())
            return Project._loaded.func(self)

    stand_in = StandIn()
    dist = Stand(tmp_path / "specs", tmp_path / "dist" / "out")
    results = build(dist, dict({s: getattr(stages, s) for s in stages.STAGES}, validate=coordinator.validate))

    assert all(r is None for rs in results.values() for r in rs), results
    assert files(tmp_path / "dist" / "out") == files(tmp_path / "local" / "out")
    reports = {f.parent.name: json.loads(f.read_text()) for f in (tmp_path / "dist" / "out").rglob("validation.json")}
    assert {r["status"] for r in reports.values()} == {"pass"}
    assert all(set(r["worker"]) == set(stages.STAGES) and "@" in r["worker"]["validate"] for r in reports.values())
    # 4 artifacts x 4 stages + 2 toolchain probes, each a JSON object naming no coordinator path
    assert len(stand_in.sent) == 18
    assert all(isinstance(json.loads(t), dict) and str(tmp_path) not in t for t in stand_in.sent)
    assert not [t for t in stand_in.sent if "s3cret" in t]              # credentials never travel


def test_a_worker_reads_the_cache_and_its_credentials_from_its_own_environment(tmp_path):
    env = {"FUSEBUILD_REMOTE_CACHE": "http://cache.internal:8080/fb", "FUSEBUILD_CACHE_DIR": str(tmp_path),
           "FUSEBUILD_REMOTE_CACHE_HEADER": "Authorization: Bearer w0rker"}
    plane = dataplane.DataPlane.from_env(env)
    assert plane.remote.base == "http://cache.internal:8080/fb"
    assert plane.remote.header == ("Authorization", "Bearer w0rker")
    with pytest.raises(dataplane.DataPlaneError, match="FUSEBUILD_REMOTE_CACHE="):
        dataplane.DataPlane.from_env({"FUSEBUILD_CACHE_DIR": str(tmp_path)})


def test_a_blob_that_does_not_match_its_digest_is_refused(tmp_path, sides):
    plane = dataplane.DataPlane(cache.Cache(cache.LocalStore(tmp_path / "c"), sides))
    ref = plane.push(b"the artifact")
    sides.store[("cas", ref["sha256"])] = b"the artifacT"                 # corrupted on the server
    fresh = dataplane.DataPlane(cache.Cache(cache.LocalStore(tmp_path / "d"), sides))
    with pytest.raises(dataplane.DataPlaneError, match="does not match its digest"):
        fresh.fetch(ref, "kernel.so")
    with pytest.raises(dataplane.DataPlaneError, match="bad reference"):
        fresh.fetch({"sha256": "../x", "size": 1}, "kernel.so")
    assert not (tmp_path / "d" / "cas").exists()                          # nothing kept
