"""What runs on a Dask worker: fusebuild's own stage functions, on data fetched by digest.

The coordinator submits `run(payload)`: this module's function (pickled by reference, so
the worker imports its own installed fusebuild) and one JSON string. The payload names a
stage, a target, the inputs as cache references, and the coordinator's key for the stage:

  probe      the target's toolchain on this worker (availability, versions)
  render     the RenderJob data (graph, hints, names) + the coordinator's templates by digest
  compile    the rendered files by digest           -> Backend.compile
  assemble   the compiled files by digest           -> Backend.assemble
  validate   the variant data + each unit's files   -> run/stages.validate, the same
             function a local build runs (it writes validation.json; status, numerics)

Each task works in a private temporary folder, pushes its outputs to the remote cache and
returns only references (`{"files": {name: {"sha256", "size"}}, "worker": ..., ...}`).
Nothing a task writes is visible to the coordinator until it is fetched and verified there.

Before a tool runs, the worker recomputes the stage's key from its own fusebuild code, its
own toolchain and the inputs it fetched, and refuses (`WrongWorker`) if it differs from the
coordinator's: a result is stored under a key only if it is what that key describes (the
same code, the same toolchain versions, the same torch). Workers that serve one resource
must therefore have identical toolchains; the refusal names the field that differs.
"""
from __future__ import annotations

import functools
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..backends import TARGETS, get_backend
from ..backends.base import Toolchain
from ..backends.templating import ROOT, SEARCH
from ..errors import FusebuildError
from ..plan import keys
from ..plan.artifacts import Artifact, needs_toolchain, units
from . import payload as P
from .dataplane import DataPlane


class WrongWorker(FusebuildError):
    """This worker cannot produce what the coordinator's key describes."""


@dataclass(frozen=True)
class Where:
    """What compile's and assemble's keys read of an artifact: its target and its folder."""
    target: str
    dir: Path


def run(text: str) -> str:
    """The one function a coordinator submits. JSON string in, JSON string out; an error
    (a refused payload, a key that differs, a failing tool) comes back as `{"error": text}`."""
    start = time.perf_counter()
    here = identity()
    try:
        p = P.loads(text)
        handler = HANDLERS.get(p.get("stage"))
        P.check(handler is not None, "stage", p.get("stage"))
        P.check(p.get("target") in TARGETS, "target", p.get("target"))
        with tempfile.TemporaryDirectory(prefix="fusebuild-task-") as tmp:
            result = handler(p, Path(tmp), here)
    except Exception as err:  # noqa: BLE001  a tool's error, reported as a local stage reports it
        shown = str(err) if isinstance(err, FusebuildError) else f"{type(err).__name__}: {err}"
        result = {"error": shown[-4000:]}
    return P.dumps(dict(result, worker=here, seconds=round(time.perf_counter() - start, 4)))


def identity() -> str:
    """`name@host` of this worker (its Dask name, or its address when it has none)."""
    try:
        from distributed import get_worker
        name = str(get_worker().name)
    except (ImportError, ValueError):
        name = f"pid{os.getpid()}"
    return f"{name}@{socket.gethostname()}"


@functools.cache
def own_toolchain(target: str) -> Toolchain:
    return get_backend(target).toolchain()


# --- stages -----------------------------------------------------------------------------

def probe(p, tmp, here) -> dict:
    tc = own_toolchain(p["target"])
    return {"toolchain": {"available": tc.available, "versions": tc.versions, "reason": tc.reason}}


def render(p, tmp, here) -> dict:
    info = TARGETS[p["target"]]
    backend = get_backend(p["target"])
    _same({"code": keys.code_digest(*keys.RENDER_CODE, info.folder)}, p["key"], p["target"], here)
    job = P.job_from(p["job"], info)
    plane = DataPlane.from_env(os.environ)
    dirs = []
    for i, entry in enumerate(p["templates"]):
        folder = tmp / f"templates{i}"
        folder.mkdir()
        plane.fetch_files({P.relative_name(rel): ref for rel, ref in entry["files"].items()}, folder)
        dirs.append((folder, entry["shown"]))
    token = SEARCH.set([str(d) for d, _ in dirs])
    try:
        rendered = backend.render(job)
    finally:
        SEARCH.reset(token)
    files = {name: plane.push(text.encode()) for name, text in rendered.files.items()}
    deps = dict(rendered.templates, templates={name: [_shown(path, dirs), digest]
                                               for name, (path, digest) in rendered.templates["templates"].items()})
    return {"files": files, "templates": deps}


def compile(p, tmp, here) -> dict:
    return _tool(p, tmp, here, "compile")


def assemble(p, tmp, here) -> dict:
    return _tool(p, tmp, here, "assemble")


def _tool(p, tmp, here, stage) -> dict:
    target = p["target"]
    backend = get_backend(target)
    ins, outs = ((backend.source_files, backend.compiled_files) if stage == "compile"
                 else (backend.assemble_inputs, backend.artifact_files))
    P.check(isinstance(p["inputs"], dict) and set(p["inputs"]) == set(ins), f"{stage} inputs", p.get("inputs"))
    tc = own_toolchain(target)
    if not tc.available:
        raise WrongWorker(f"{here} cannot {stage} {target}: {tc.reason}")
    build, dest = tmp / "build", tmp / "dest"
    dest.mkdir()
    plane = DataPlane.from_env(os.environ)
    plane.fetch_files(p["inputs"], build)
    key = getattr(keys, stage)(Where(target, build), backend, tc).cache_key()
    _same(key, p["key"], target, here)
    getattr(backend, stage)(build, dest)
    return {"files": plane.push_files(dest, outs)}


def validate(p, tmp, here) -> dict:
    from ..run import stages
    variant = P.variant_from(p["variant"], TARGETS)
    a = Artifact(variant, p["target"], tmp / "out")
    P.check(p["target"] in variant.targets, "target", p["target"])
    backend = get_backend(a.target) if needs_toolchain(a) else None
    t = p["toolchain"]
    P.check(isinstance(t, dict) and set(t) == {"available", "versions", "reason"}, "toolchain", t)
    tc = Toolchain(bool(t["available"]), dict(t["versions"]), str(t["reason"]))
    plane = DataPlane.from_env(os.environ)
    allowed = unit_files(a, backend)
    P.check(isinstance(p["inputs"], dict) and set(p["inputs"]) <= set(allowed), "validate inputs",
             sorted(p.get("inputs", {})))
    for rel, refs in p["inputs"].items():
        P.check(isinstance(refs, dict) and set(refs) <= allowed[rel], f"files of {rel}", sorted(refs))
        plane.fetch_files(refs, a.dir / rel)
    _same(keys.validate(a, backend, tc).cache_key(), p["key"], a.target, here)
    token = stages.RAN_ON.set(here)
    try:
        failed = stages.validate(_WorkerProject(backend, tc), a)
    finally:
        stages.RAN_ON.reset(token)
    return {"files": {"validation.json": plane.push(a.report.read_bytes())},
            "cacheable": (a.dir / ".stages" / "validate.cache.json").exists(),
            "failed": failed.message if failed is not None else None}


HANDLERS = {"probe": probe, "render": render, "compile": compile, "assemble": assemble, "validate": validate}


# --- helpers --------------------------------------------------------------------------------

class _WorkerProject:
    """What run/stages.validate asks of a project: the backend and the coordinator's toolchain."""

    def __init__(self, backend, toolchain):
        self._backend, self._toolchain = backend, toolchain

    def backend(self, target):
        return self._backend

    def toolchain(self, target):
        return self._toolchain


def unit_files(a, backend) -> dict:
    """unit folder (relative to the artifact's) -> the files validation may read there:
    what its stages wrote, and their time records (for the report's timings and workers)."""
    names = {f".stages/{s}.json" for s in ("render", "compile", "assemble")}
    if backend is not None:
        names |= {*backend.source_files, *backend.compiled_files, *backend.artifact_files, *backend.assemble_inputs}
    return {str(u.dir.relative_to(a.dir)): names for u in units(a, backend)}


def _same(mine: dict, theirs, target, here):
    """Refuse unless this worker's key equals the coordinator's; name what differs."""
    if mine == theirs:
        return
    theirs = theirs if isinstance(theirs, dict) else {}
    diffs = []
    for field in sorted(set(mine) | set(theirs)):
        a, b = mine.get(field), theirs.get(field)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += [f"{field}.{k}: {a.get(k)!r} here, {b.get(k)!r} on the coordinator"
                      for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        else:
            diffs.append(f"{field}: {a!r} here, {b!r} on the coordinator")
    raise WrongWorker(f"{here} refuses {target}: its key differs from the coordinator's ({'; '.join(diffs)[:1500]})",
                      valid="workers with the coordinator's fusebuild, toolchain versions and torch")


def _shown(path: str, dirs) -> str:
    """A depfile path of this worker's template folders, as the coordinator shows its own."""
    full = Path(path) if Path(path).is_absolute() else ROOT / path
    for folder, shown in dirs:
        if full.is_relative_to(folder):
            return str(PurePosixPath(shown) / full.relative_to(folder).as_posix())
    return path

