"""Validating at several sizes: a dynamic artifact runs at each of its variant's samples.

A variant with a dynamic parameter (spec/dynamic.py) carries `samples`: the sizes its one
artifact is validated at (the minimum, a prime, the maximum, the spec's `validate:`).
For each, the graph is specialized to that size (Graph.specialize), inputs are drawn for
the specialized shapes from the variant's seed, the artifact runs on them (the backend
sees tensors of the actual size: the artifact reads M from them) and is compared with
the torch reference of the specialized graph. A static variant is the one sample `{}`.

The report keeps every sample (`samples: [{M: 61, status, max_abs, ...}]`); its top-level
outputs, numbers and steps are those of the worst sample (the first failing one, else the
one furthest from its reference), which `worst_sample` names.
"""
from __future__ import annotations

import dataclasses
import time

from . import modes
from . import validate as V


@dataclasses.dataclass(frozen=True)
class SampledRun:
    run: modes.ModeRun          # the worst sample's run (its outputs, mode report)
    outputs: dict               # the worst sample's per-output comparison
    ok: bool                    # every sample within tolerance (and every compare step)
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
    """Run `a` (in its mode) at each sample size and compare each with its reference
    (computed on `ref_device` when given: gpu-validate's reference runs on the GPU)."""
    v = a.variant
    results = []
    for values in v.samples or ({},):
        start = time.perf_counter()
        sa = at_size(a, values)
        g = sa.variant.graph
        inputs = V.make_inputs(g, v.seed)
        ref = V.reference(g, inputs if ref_device is None else {k: x.to(ref_device) for k, x in inputs.items()})
        run = modes.execute(sa, backend, inputs)
        per_output = V.check_outputs(g, run.outputs, ref, v.tolerance)
        ok = run.ok and all(r["ok"] for r in per_output.values())
        results.append((values, run, per_output, ok, round(time.perf_counter() - start, 4)))
    bad = [r for r in results if not r[3]]
    worst = bad[0] if bad else max(results, key=lambda r: max(o.get("max_rel", 0) or 0 for o in r[2].values()))
    execution = backend.execution(a.dir) if backend else None
    samples = []
    for values, run, per_output, _ok, seconds in results if v.samples else ():
        status, reason = V.verdict(per_output, run.ok, execution)
        samples.append(dict(values, status=status, seconds=seconds, **V.worst(per_output),
                            **({"reason": reason} if reason else {})))
    return SampledRun(worst[1], worst[2], not bad, samples, worst[0], execution)
