"""The stage actions doit runs: render, compile, assemble, validate.

Each action takes the project (backends, toolchains) and one artifact. It reads its
inputs from the artifact folder, works in a staging folder, and moves finished files
into place atomically (fsutil.staging): a killed build never leaves a half-written
output that looks current. Each stage records its time in `.stages/<stage>.json`;
validate gathers them into validation.json.

Every stage first asks the artifact cache for its result under the stage's cache key
(plan/keys.py): a hit writes the outputs and skips the tool; a miss runs the tool and
stores the outputs. A failed validation is never stored.

Where each stage's tool ran is recorded too (`RAN_ON`): `local`, `cache` (restored, the
tool did not run), or the Dask worker that ran it (FUSEBUILD_SCHEDULER; the executor in
fusebuild/distributed sets it); validation.json names them under `worker`.

Failures come back as doit TaskFailed with a short message, not a traceback.
"""
from __future__ import annotations

import contextvars
import json
import time
import traceback

from doit.exceptions import TaskFailed

from .. import cache
from ..backends.base import RenderJob
from ..fsutil import json_text, read_json, staging, write_atomic, write_json
from ..plan import keys
from ..plan.artifacts import needs_toolchain, units
from ..runtime import manifest
from ..runtime.targets import TARGETS as RUNTIME_TARGETS
from ..runtime.targets import here
from ..status import Status
from ..toolchains import package_version
from ..tune import select
from . import devices, modes
from . import samples as S
from . import validate as V

STAGES = ("render", "compile", "assemble", "validate")
RAN_ON = contextvars.ContextVar("fusebuild_ran_on", default="local")   # who ran the current stage's tool


def _timed(stage: str):
    def wrap(fn):
        def action(project, a, *args):
            start = time.perf_counter()
            token = RAN_ON.set("local")
            try:
                result = fn(project, a, *args)
                ran_on = RAN_ON.get()
            except Exception as err:  # toolchain errors: report them, keep the build going
                tail = "".join(traceback.format_exception_only(type(err), err)).strip()
                return TaskFailed(f"{stage} {a.id}: {tail[-4000:]}")
            finally:
                RAN_ON.reset(token)
            write_json(a.dir / ".stages" / f"{stage}.json",
                       {"seconds": round(time.perf_counter() - start, 4), "worker": ran_on})
            return result
        action.__name__ = f"{stage}_action"
        return action
    return wrap


def render_job(project, a) -> RenderJob:
    """The hints are the ones tune/select.py picks: a tuned winner, else the spec's, else defaults."""
    backend = project.backend(a.target)
    chosen = select.schedule(a, backend)
    return RenderJob(a.variant.graph, chosen.used, a.variant.spec, a.variant.name, chosen.part_hints())


@_timed("render")
def render(project, a):
    backend = project.backend(a.target)
    act = cache.Action("render", a.dir, keys.render(a, backend).cache_key(),
                       (*backend.source_files, ".stages/render.deps.json"))
    if act.restore():
        RAN_ON.set("cache")
        return
    rendered = backend.render(render_job(project, a))
    for name, text in rendered.files.items():
        write_atomic(a.dir / name, text, only_if_changed=True)
    write_json(a.dir / ".stages" / "render.deps.json", rendered.templates)
    act.store_from(a.dir)


@_timed("compile")
def compile(project, a):
    backend = project.backend(a.target)
    act = cache.Action("compile", a.dir, keys.compile(a, backend, project.toolchain(a.target)).cache_key(),
                       backend.compiled_files)
    if act.restore():
        RAN_ON.set("cache")
        return
    with staging(a.dir) as dest:
        backend.compile(a.dir, dest)
        act.store_from(dest)


@_timed("assemble")
def assemble(project, a):
    backend = project.backend(a.target)
    act = cache.Action("assemble", a.dir, keys.assemble(a, backend, project.toolchain(a.target)).cache_key(),
                       tuple(backend.artifact_files))
    if act.restore():
        RAN_ON.set("cache")
        return
    with staging(a.dir) as dest:
        backend.assemble(a.dir, dest)
        act.store_from(dest)


def validate(project, a):
    """Run the artifact on seeded inputs, compare with the torch reference, write the report.
    Returns TaskFailed iff the artifact ran and its numerics are wrong (or it crashed).
    The status comes from V.verdict (an emulated run is `emulated`, never `pass`); a
    dynamic artifact is run at each of its sample sizes (run/samples.py)."""
    toolchain = project.toolchain(a.target)
    backend = project.backend(a.target) if needs_toolchain(a) else None
    report = _report_base(a, toolchain)
    start = time.perf_counter()
    if backend and not toolchain.available:
        report.update(status=Status.NOT_RUN, reason=toolchain.reason, **devices.kept(a, backend))
        write_json(a.report, report)
        return _failed(devices.failed_elsewhere(a, report))
    device = backend.device() if backend else None
    if backend and not device.available:   # built, but cannot run here: never `pass`
        report.update(status=Status.NOT_VALIDATED, reason=device.reason, artifacts=_built(a, backend),
                      schedule=schedule_report(a, backend), **({"fix": device.fix} if device.fix else {}),
                      **devices.kept(a, backend))
        write_json(a.report, report)
        return _failed(devices.failed_elsewhere(a, report))
    act = cache.Action("validate", a.dir, keys.validate(a, backend, toolchain).cache_key(), (a.report.name,))
    if act.restore(rewrite=lambda name, data: restamp(data, report)):
        return None
    report["worker"]["validate"] = RAN_ON.get()
    try:
        sampled = S.run_samples(a, backend)      # at each sample size (run/samples.py), on every input set
        execution = sampled.execution
        report.update(sampled.report)
    except Exception as err:
        report.update(status=Status.FAIL, reason=f"run failed: {type(err).__name__}: {err}"[-2000:])
        write_json(a.report, report)
        return TaskFailed(f"validate {a.id}: {report['reason']}")
    status, reason = V.verdict(sampled.sets, sampled.ok, execution)
    steps = sampled.steps
    first = next((s for s in steps if not s["ok"]), None)
    for s in steps:
        s["first_bad"] = s is first
    if steps:
        report.update(steps=steps, first_bad_step=first["node"] if first else None)
    report.update(status=status, outputs=sampled.sets[V.INPUT_SETS[0]],
                  input_sets={k: {"outputs": o, **V.worst(o)} for k, o in sampled.sets.items()},
                  **V.worst(sampled.sets))
    if sampled.samples:
        report.update(samples=sampled.samples, worst_sample=sampled.worst)
        if status is Status.FAIL:
            reason = f"at {_sizes(sampled.worst)}: {reason}"
    if backend:
        report["validated_on"] = here(a.target)
    if reason and status is not Status.FAIL:
        report["reason"] = reason
    if execution is not None:
        report["execution"] = execution.steps
    if backend:
        report["schedule"] = schedule_report(a, backend)
        report.update(devices.record(a, backend, device, report))
    report["timings"]["validate"] = round(time.perf_counter() - start, 4)
    write_json(a.report, report)
    if status is not Status.FAIL:
        act.store_from(a.dir)
        return None
    bad = [reason]
    if report.get("first_bad_step"):
        bad.append(f"first step over its bound: {report['first_bad_step']}\n{modes.step_table(report)}")
    if modes.hint(a):
        bad.append(modes.hint(a))
    return TaskFailed(f"validate {a.id}: FAIL " + "; ".join(bad))


# What names the artifact a report is about, rather than what its content gives: the
# validate cache key is content-addressed (graph, seed, hints, artifact bytes), so two
# artifacts of different specs, variants or dynamic ranges with identical content share
# one cache entry, and the report restored from it must name the one being built.
IDENTITY = ("spec", "variant", "target", "mode", "params", "seed", "runtime")


def restamp(data: bytes, base: dict) -> bytes:
    """A cached validation.json with the identity fields of `base` (_report_base of the
    artifact being built); byte-identical when they already match (early cutoff)."""
    try:
        report = json.loads(data)
    except ValueError:
        return data
    if not isinstance(report, dict):
        return data
    want = {k: base[k] for k in IDENTITY if k in base}
    if all(_same(report.get(k), v) for k, v in want.items()):
        return data
    report.update(want)
    return json_text(report).encode()


def _same(x, y) -> bool:
    """Equal as they are written to JSON (tuples and lists alike)."""
    return json.dumps(x, sort_keys=True, default=str) == json.dumps(y, sort_keys=True, default=str)


def _sizes(values: dict) -> str:
    return ", ".join(f"{k}={n}" for k, n in values.items())


def schedule_report(a, backend) -> dict:
    """Which schedule the artifact was built with: its source (tuned: with the device and date
    it was tuned on; hint; default), the hints the spec gave, the hints used, and what the
    backend resolved (with any reduction and why)."""
    return dict(select.schedule(a, backend).report(), built=backend.schedule(a.dir))


def _built(a, backend) -> list:
    """The loadable artifacts a not-validated report stands for (relative to the artifact folder)."""
    return [str((u.dir / f).relative_to(a.dir)) for u in units(a, backend) for f in backend.artifact_files
            if (u.dir / f).exists()]


def _report_base(a, toolchain) -> dict:
    timings = {}
    for stage in STAGES[:3]:
        rec = read_json(a.dir / ".stages" / f"{stage}.json")
        if rec:
            timings[stage] = rec["seconds"]
    return {"spec": a.variant.spec, "variant": a.variant.name, "target": a.target, "mode": a.variant.mode,
            "params": a.variant.params, "seed": a.variant.seed, "status": None,
            "toolchain": dict(toolchain.versions, torch=package_version("torch")), "timings": timings,
            "runtime": _runtime_manifest(a), "worker": _workers(a)}


def _runtime_manifest(a) -> dict:
    """What fusebuild.load reads (runtime/manifest.py): signature, graph, key, tolerances, file hashes."""
    g, v = a.variant.graph, a.variant
    rules = {n: V.tolerance_rule(g, g.tensors[n].dtype, v.tolerance) for n in g.outputs}
    files = RUNTIME_TARGETS[a.target].files if a.target in RUNTIME_TARGETS else ()
    return manifest.block(v, a.target, a.dir, files, rules)


def _workers(a) -> dict:
    """stage -> where its tool ran for `a` (over its node artifacts in the node modes)."""
    seen = {}
    for u in units(a):
        for stage in STAGES[:3]:
            rec = read_json(u.dir / ".stages" / f"{stage}.json")
            if rec:
                seen.setdefault(stage, set()).add(rec.get("worker", "local"))
    return {stage: ", ".join(sorted(w)) for stage, w in seen.items()}


def _failed(message):
    return TaskFailed(message) if message else None


def spec_error(path, err):
    """The action of a bad spec's task: fail with the message, touch nothing in out/."""
    return TaskFailed(str(err))
