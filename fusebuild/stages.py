"""The stage actions doit runs: render, compile, assemble, validate.

Each stage reads its inputs from the artifact folder, works in a staging folder, and
moves finished files into place atomically (fsutil.staging): a killed build never leaves
a half-written output that looks current. Each stage records its time in
`.stages/<stage>.json`; validate gathers them into validation.json.

Failures come back as doit TaskFailed with a short message, not a traceback.

Every stage first asks the artifact cache (cache.py) for its result under a key of
everything it depends on (keys.py): a hit writes the outputs and skips the tool; a miss
runs the tool and stores the outputs. A failed validation is never stored.
"""
from __future__ import annotations

import time
import traceback

from doit.exceptions import TaskFailed

from . import cache, keys
from .backends import get_backend
from .fsutil import read_json, staging, write_atomic, write_json
from .report import step_table
from .toolchains import package_version
from . import modes, validate as V


def _timed(stage: str):
    def wrap(fn):
        def action(a, *args):
            start = time.perf_counter()
            try:
                result = fn(a, *args)
            except Exception as err:  # toolchain errors: report them, keep the build going
                tail = "".join(traceback.format_exception_only(type(err), err)).strip()
                return TaskFailed(f"{stage} {a.id}: {tail[-4000:]}")
            write_json(a.dir / ".stages" / f"{stage}.json", {"seconds": round(time.perf_counter() - start, 4)})
            return result
        action.__name__ = f"{stage}_action"
        return action
    return wrap


@_timed("render")
def render(a):
    backend = get_backend(a.target)
    act = cache.Action("render", a.dir, keys.render(a), (*backend.source_files, ".stages/render.deps.json"))
    if act.restore():
        return
    files, templates = backend.render(a.variant.graph, a.variant.schedule.get(a.target, {}),
                                      str(a.variant.path), a.variant.name)
    for name, text in files.items():
        write_atomic(a.dir / name, text, only_if_changed=True)
    write_json(a.dir / ".stages" / "render.deps.json", templates)
    act.store_from(a.dir)


@_timed("compile")
def compile(a):
    backend = get_backend(a.target)
    act = cache.Action("compile", a.dir, keys.compile(a), backend.compiled_files)
    if act.restore():
        return
    with staging(a.dir) as dest:
        backend.compile(a.dir, dest)
        act.store_from(dest)


@_timed("assemble")
def assemble(a):
    backend = get_backend(a.target)
    act = cache.Action("assemble", a.dir, keys.assemble(a), tuple(backend.artifact_files))
    if act.restore():
        return
    with staging(a.dir) as dest:
        backend.assemble(a.dir, dest)
        act.store_from(dest)


def validate(a, toolchain: dict):
    """Run the artifact on seeded inputs, compare with the torch reference, write the report.
    Returns TaskFailed iff the artifact ran and its numerics are wrong (or it crashed).
    A backend that could only emulate says so through `execution()`: the status is then
    its own (e.g. `emulated`, with a reason and which steps ran), never `pass`."""
    v = a.variant
    backend = get_backend(a.target) if modes.needs_toolchain(a) else None
    report = _report_base(a, toolchain)
    start = time.perf_counter()
    can_run, why = backend.device() if backend else (True, "")
    if backend and not toolchain["available"]:
        report.update(status="not-run", reason=toolchain["reason"])
        write_json(a.report, report)
        return None
    if backend and not can_run:   # the artifact was built but cannot run here: never `pass`
        report.update(status=NOT_VALIDATED, reason=why, artifacts=_built(a, backend))
        write_json(a.report, report)
        return None
    act = cache.Action("validate", a.dir, keys.validate(a, toolchain), (a.report.name,))
    if act.restore():
        return None
    try:
        inputs = V.make_inputs(v.graph, v.seed)
        ref = V.reference(v.graph, inputs)
        run = modes.execute(a, backend, inputs)
        outs = run.outputs
        report.update(run.report)
        how = backend.execution(a.dir) if backend else {}   # {} for a real run; else how it ran
        per_output = {}
        for name in v.graph.outputs:
            atol, rtol = V.tolerance(v.graph, v.graph.tensors[name].dtype, v.tolerance, ref[name])
            per_output[name] = dict(V.compare(outs[name], ref[name], atol, rtol), atol=atol, rtol=rtol)
    except Exception as err:
        report.update(status="fail", reason=f"run failed: {type(err).__name__}: {err}"[-2000:])
        write_json(a.report, report)
        return TaskFailed(f"validate {a.id}: {report['reason']}")
    worst = max(per_output.values(), key=lambda r: r.get("max_rel", float("inf")))
    ok = all(r["ok"] for r in per_output.values()) and run.ok
    report.update(status="pass" if ok else "fail", outputs=per_output,
                  **{k: worst.get(k) for k in ("max_abs", "mean_abs", "max_rel", "atol", "rtol")})
    if how:   # numerics checked, but not by running the artifact: never report `pass`
        report.update(execution=how.get("steps", {}), **({"status": how["status"], "reason": how["reason"]} if ok else {}))
    report["timings"]["validate"] = round(time.perf_counter() - start, 4)
    write_json(a.report, report)
    if ok:
        act.store_from(a.dir)
    else:
        bad = [f"{n}: {r.get('mismatches', '?')} mismatches, max_abs {r.get('max_abs')}" for n, r in per_output.items()
               if not r["ok"]]
        if report.get("first_bad_step"):
            bad.append(f"first step over tolerance: {report['first_bad_step']}\n{step_table(report)}")
        if modes.hint(a):
            bad.append(modes.hint(a))
        return TaskFailed(f"validate {a.id}: FAIL " + "; ".join(bad))
    return None


NOT_VALIDATED = "built-not-validated"


def _built(a, backend) -> list:
    """The loadable artifacts a not-validated report stands for (relative to the artifact folder)."""
    return [str((u.dir / f).relative_to(a.dir)) for u in modes.units(a) for f in backend.artifact_files
            if (u.dir / f).exists()]


def _report_base(a, toolchain) -> dict:
    timings = {}
    for stage in ("render", "compile", "assemble"):
        rec = read_json(a.dir / ".stages" / f"{stage}.json")
        if rec:
            timings[stage] = rec["seconds"]
    return {"spec": a.variant.spec, "variant": a.variant.name, "target": a.target, "mode": a.variant.mode,
            "params": a.variant.params, "seed": a.variant.seed, "status": None,
            "toolchain": dict(toolchain["versions"], torch=package_version("torch")), "timings": timings}


def spec_error(path, err):
    """The action of a bad spec's task: fail with the message, touch nothing in out/."""
    return TaskFailed(str(err))
