"""The coordinator's side of a distributed build: a project whose tools run on workers.

doit keeps everything it always had on the coordinator: the task graph, the up-to-date
checks, the dependency DB, the cache lookups and stores, the staging folders and atomic
moves into out/ (run/stages.py, unchanged). What changes is who runs the tools:

  ClusterProject.backend(t)    a `RemoteBackend`: render/compile/assemble send their inputs
                               to the remote cache, run on a worker that offers the stage's
                               resources, and fetch the outputs back (verified by digest)
                               into the stage's staging folder
  ClusterProject.toolchain(t)  probed on a worker that offers the target's compile
                               resources (its versions go into every key), or missing
                               with the reason: `no worker with tilelang` (status not-run)
  validate(project, a)         the validate action: a cache hit is restored here; otherwise
                               the whole validation (inputs, reference, run, verdict, report)
                               runs on a worker that offers the validate resources, through
                               the same run/stages.validate a local build runs. A stage no
                               worker offers is answered here without running anything:
                               `built-not-validated`, reason `no worker with GPU`

A build refuses to start, with one error task (`build:FUSEBUILD_SCHEDULER`), when the
scheduler cannot be reached or no remote cache is configured (it is the data plane).
"""
from __future__ import annotations

import functools
from pathlib import Path

from .. import cache, settings
from ..backends.base import Device, Rendered, Toolchain
from ..backends.templating import template_dirs
from ..errors import FusebuildError
from ..fsutil import write_atomic
from ..plan import keys
from ..plan.artifacts import needs_toolchain
from ..plan.project import Project
from ..run import stages
from . import payload as P
from . import placement
from .cluster import SETTING, Cluster, NoWorker
from .dataplane import DataPlane
from .worker import Where, unit_files


class ClusterProject(Project):
    """A project whose stages' tools run on the cluster named by FUSEBUILD_SCHEDULER."""
    cluster: Cluster
    plane: DataPlane

    @classmethod
    def from_settings(cls, env=None, targets=None) -> Project:
        """A ClusterProject when FUSEBUILD_SCHEDULER is set, else a plain Project."""
        if not settings.get(SETTING, env).strip():
            return Project.from_settings(env, targets)
        return cls(settings.get("FUSEBUILD_SPECS", env), settings.get("FUSEBUILD_OUT", env), env, targets)

    @functools.cached_property
    def _loaded(self) -> tuple:
        """The specs, once the cluster and the data plane answer; else one error (no tasks)."""
        specs, errors = Project._loaded.func(self)
        if not specs:
            return specs, errors
        try:
            self.cluster = Cluster.from_settings(self.env)
            self.plane = DataPlane(cache.get())
            self.plane.check()
            self.cluster.workers(max_age=0)             # connects: an unreachable scheduler says so now
        except FusebuildError as err:
            return [], errors + [(Path(SETTING), err)]
        return specs, errors

    @functools.cached_property
    def _toolchains_on_cluster(self) -> dict:
        return self._probe(sorted({a.target for a in self.artifacts}))

    def _probe(self, targets) -> dict:
        """Each target's toolchain, probed at once on workers that offer its compile resources."""
        todo, found = {}, {}
        for target in targets:
            info = self.targets[target]
            try:
                need = self.cluster.choose(info, "compile")
                if need is None:
                    found[target] = Toolchain.missing(placement.missing(placement.needs(info, "compile")))
                else:
                    todo[target] = (self.cluster.submit({"stage": "probe", "target": target}, need,
                                                        f"probe {target}"), need)
            except FusebuildError as err:           # the cluster went away: the target says so (not-run)
                found[target] = Toolchain.missing(err.message)
        for target, (future, need) in todo.items():
            try:
                t = self.cluster.result(future, need, f"probe {target}")["toolchain"]
                found[target] = Toolchain(t["available"], t["versions"], t["reason"])
            except FusebuildError as err:           # no worker any more, a failing probe, a lost scheduler
                found[target] = Toolchain.missing(err.message)
        return found

    def toolchain(self, target: str):
        if target not in self._toolchains:
            found = self._toolchains_on_cluster
            self._toolchains[target] = found[target] if target in found else self._probe([target])[target]
        return self._toolchains[target]

    def backend(self, target: str):
        if target not in self._backends:
            self._backends[target] = RemoteBackend(super().backend(target), self)
        return self._backends[target]


class RemoteBackend:
    """A backend whose tools run on the cluster; everything else (file lists, hints,
    schedule records read from out/) is the real backend's."""

    def __init__(self, real, project: ClusterProject):
        self.real, self.project = real, project

    def __getattr__(self, name):
        return getattr(self.real, name)

    @property
    def cluster(self) -> Cluster:
        return self.project.cluster

    def toolchain(self) -> Toolchain:
        return self.project.toolchain(self.real.name)

    def device(self) -> Device:
        need = self.cluster.choose(self.real.info, "validate")
        if need is None:
            why = placement.missing(placement.needs(self.real.info, "validate"))
            return Device(False, f"built, not validated: {why}",
                          f"add a worker: dask worker {self.cluster.address} --resources "
                          f"\"{' '.join(f'{k}=1' for k in placement.needs(self.real.info, 'validate')[0])}\"")
        return Device(True)

    def render(self, job) -> Rendered:
        info, plane = self.real.info, self.project.plane
        templates = []
        for folder, entry in zip(template_dirs(self.real.template_folder), _split(keys.templates_listing(
                self.real.template_folder))):
            templates.append({"shown": entry["shown"], "files": plane.push_files(folder, entry["files"])})
        what = f"render {job.spec}/{job.variant}/{self.real.name}"
        out = self._run("render", {"job": P.job_data(job), "templates": templates,
                                   "key": {"code": keys.code_digest(*keys.RENDER_CODE, info.folder)}}, what)
        _expect(out["files"], self.real.source_files, what)
        texts = {name: plane.fetch(ref, name).decode() for name, ref in out["files"].items()}
        return Rendered(texts, out["templates"])

    def compile(self, build_dir, dest):
        self._tool("compile", Path(build_dir), Path(dest), self.real.source_files, self.real.compiled_files)

    def assemble(self, build_dir, dest):
        self._tool("assemble", Path(build_dir), Path(dest), self.real.assemble_inputs, self.real.artifact_files)

    def run(self, build_dir, graph, inputs):
        raise RuntimeError("on a cluster, artifacts run on workers (distributed.coordinator.validate)")

    def _tool(self, stage, build_dir, dest, ins, outs):
        key = getattr(keys, stage)(Where(self.real.name, build_dir), self.real, self.toolchain()).cache_key()
        what = f"{stage} {build_dir.relative_to(self.project.out)}"
        out = self._run(stage, {"inputs": self.project.plane.push_files(build_dir, ins), "key": key}, what)
        _expect(out["files"], outs, what)
        self.project.plane.fetch_files(out["files"], dest)

    def _run(self, stage, body, what) -> dict:
        need = self.cluster.choose(self.real.info, stage)
        if need is None:
            raise NoWorker(f"{what}: {placement.missing(placement.needs(self.real.info, stage))}")
        out = self.cluster.run(dict(body, stage=stage, target=self.real.name), need, what)
        stages.RAN_ON.set(out["worker"])
        return out


def validate(project, a):
    """The validate action of a distributed build (see the module docstring)."""
    from doit.exceptions import TaskFailed
    if not isinstance(project, ClusterProject):
        return stages.validate(project, a)
    try:
        return _validate(project, a)
    except FusebuildError as err:                   # the cluster's or the data plane's: one line
        return TaskFailed(f"validate {a.id}: {err}")


def _validate(project, a):
    backend = project.backend(a.target) if needs_toolchain(a) else None
    toolchain = project.toolchain(a.target)
    if backend is not None and (not toolchain.available or not backend.device().available):
        return stages.validate(project, a)          # writes the not-run / not-validated report; runs nothing
    info = project.targets[a.target]
    need = project.cluster.choose(info, "validate") if backend is not None else {}
    key = keys.validate(a, backend, toolchain).cache_key()
    act = cache.Action("validate", a.dir, key, (a.report.name,))
    if act.restore():
        return None
    plane = project.plane
    inputs = {}
    for rel, names in unit_files(a, backend).items():
        folder = a.dir / rel
        inputs[rel] = plane.push_files(folder, sorted(n for n in names if (folder / n).is_file()))
    body = {"stage": "validate", "target": a.target, "variant": P.variant_data(a.variant), "inputs": inputs,
            "toolchain": {"available": toolchain.available, "versions": toolchain.versions,
                          "reason": toolchain.reason}, "key": key}
    try:
        out = project.cluster.run(body, need, f"validate {a.id}")
    except NoWorker:
        if backend is None:
            raise
        project.cluster.forget(info, "validate")      # the report says so; nothing ran
        return stages.validate(project, a)
    data = plane.fetch(out["files"]["validation.json"], "validation.json")
    write_atomic(a.report, data)
    if out["cacheable"]:
        act.store({a.report.name: data})
    if out["failed"]:
        from doit.exceptions import TaskFailed
        return TaskFailed(out["failed"])
    return None


def _expect(files: dict, names, what: str):
    """A worker's outputs are exactly the files the stage writes (nothing else lands in out/)."""
    if set(files) != set(names):
        raise RuntimeError(f"{what}: the worker returned {sorted(files)}, expected {sorted(names)}")


def _split(listing) -> list:
    """keys.templates_listing -> [{"shown": folder as shown, "files": [name, ...]}] per search folder."""
    out = []
    for first, second in listing:
        if first == "dir":
            out.append({"shown": second, "files": []})
        else:
            out[-1]["files"].append(first)
    return out

