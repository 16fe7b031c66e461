"""Validating at several sizes: a dynamic artifact runs at each of its variant's samples.

A variant with a dynamic parameter (spec/dynamic.py) carries `samples`: the sizes its one
artifact is validated at (the minimum, a prime, the maximum, the spec's `validate:`).
For each, the graph is specialized to that size (Graph.specialize), inputs are drawn for
the specialized shapes from the variant's seed, the artifact runs on them (the backend
sees tensors of the actual size: the artifact reads M from them) and is compared with
the torch reference of the specialized graph, on every input set (validate.input_sets). A
static variant is the one sample `{}`.

The report keeps every sample (`samples: [{M: 61, status, max_abs, ...}]`); its top-level
outputs, numbers and steps are those of the worst sample (the first failing one, else the
one closest to its bound), which `worst_sample` names.
"""
from __future__ import annotations

import dataclasses
import time

from ..status import Status
from . import modes
from . import validate as V


@dataclasses.dataclass(frozen=True)
class SampledRun:
    report: dict                # the worst sample's mode report (timings)
    sets: dict                  # the worst sample's {input set: per-output comparison}
    steps: list                 # the worst sample's compare rows (every input set)
    ok: bool                    # every sample's every compare step within its bound
    samples: list               # one summary per sample ([] for a static artifact)
    worst: dict                 # the worst sample's sizes ({} for a static artifact)
    execution: object = None    # Backend.execution after the runs (None: ran on its device)


def at_size(a, values: dict):
    """The artifact `a` with its graph specialized to `values` (same folder, same files)."""
    if not values:
        return a
    v = a.variant
    return dataclasses.replace(a, variant=dataclasses.replace(v, graph=v.graph.specialize(values)))


def run_samples(a, backend, ref_device=None) -> SampledRun:
    """Run `a` (in its mode) at each sample size on every input set (validate.input_sets),
    and compare each output with its reference and per-element bound (validate.expected),
    computed on `ref_device` when given (gpu-validate's reference runs on the GPU)."""
    v = a.variant
    results = []
    for values in v.samples or ({},):
        start = time.perf_counter()
        sa = at_size(a, values)
        g = sa.variant.graph
        sets, steps, steps_ok, report = {}, [], True, {}
        for which, inputs in V.input_sets(g, v.seed).items():
            exp = V.expected(g, inputs if ref_device is None else {k: x.to(ref_device) for k, x in inputs.items()})
            run = modes.execute(sa, backend, inputs, which)
            report.update(run.report)
            steps += run.steps
            steps_ok = steps_ok and run.ok
            sets[which] = V.check_outputs(g, run.outputs, exp, v.tolerance)
        ok = steps_ok and V.verdict(sets)[0] is not Status.FAIL
        results.append((values, report, sets, steps, steps_ok, ok, round(time.perf_counter() - start, 4)))
    bad = [r for r in results if not r[5]]
    worst = bad[0] if bad else max(results, key=lambda r: V.worst(r[2]).get("ratio") or 0)
    execution = backend.execution(a.dir) if backend else None
    samples = []
    for values, _report, sets, _steps, steps_ok, _ok, seconds in results if v.samples else ():
        status, reason = V.verdict(sets, steps_ok, execution)
        samples.append(dict(values, status=status, seconds=seconds, **V.worst(sets),
                            **({"reason": reason} if reason else {})))
    values, report, sets, steps, steps_ok, _ok, _seconds = worst
    return SampledRun(report, sets, steps, steps_ok, samples, values, execution)
