"""`fusebuild gpu-validate`: validate built tir-cuda artifacts on this machine's GPU.

A build machine without a GPU leaves each tir-cuda artifact `built-not-validated`. On any
machine with a Hopper GPU, torch, pyyaml and jinja2 (no doit, TVM, TileLang or IREE are
imported on this path), this command finds those artifacts under --out for the specs in
--specs, rebuilds the inputs with the same seeds (validate.make_inputs: CPU generator,
identical everywhere), computes the torch reference and its per-element error bound on
the GPU (validate.expected), runs the artifact through the ctypes loader (NaN-poisoned
outputs) on both input sets, compares with validate.compare as `doit build` does, and
rewrites each validation.json with status pass/fail, the GPU's name, and the GPU's verdict
under `verdicts`. Exit code 1 if any artifact fails or is missing.

A later `doit build` on a machine without a GPU sets the report's own status back to
built-not-validated (true of that machine) but keeps `verdicts` while the artifact and
the validating code are the same (run/devices.py); the summary shows "pass on <GPU>".
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..fsutil import read_json, write_json
from ..plan import keys
from ..plan.project import Project
from ..runtime.targets import here
from ..status import Status
from ..tables import table
from . import devices
from . import validate as V
from .samples import run_samples

TARGET = "tir-cuda"


def validate_one(a, backend, gpu: str, device: str = "cuda") -> dict:
    """Validate one built artifact on `gpu` (the reference and its bound run on `device`)."""
    import torch
    v = a.variant
    report = read_json(a.report) or {"spec": v.spec, "variant": v.name, "target": a.target, "params": v.params,
                                     "seed": v.seed, "mode": v.mode}
    if v.mode != "fused":
        return dict(report, status=Status.NOT_RUN, reason=f"gpu-validate runs fused artifacts only (mode {v.mode})")
    if not all((a.dir / f).exists() for f in backend.artifact_files):
        return dict(report, status=Status.NOT_RUN, reason="artifact not built: run `doit build` first")
    start = time.perf_counter()
    report = {k: x for k, x in report.items() if k not in ("reason", "artifacts", "samples", "worst_sample")}
    sampled = None
    try:                           # a dynamic artifact: at each sample size; every input set
        sampled = run_samples(a, backend, ref_device=device)
    except Exception as err:       # noqa: BLE001 - a crashing artifact is a fail with its reason
        status, reason = Status.FAIL, f"run failed: {type(err).__name__}: {err}"[-2000:]
    else:
        status, reason = V.verdict(sampled.sets, sampled.ok)
    report.update(status=status, device=gpu, validated_on=here(TARGET) if device == "cuda" else {"kind": device},
                  validated_by="fusebuild gpu-validate", torch_gpu=torch.__version__)
    if sampled is not None:
        sets = sampled.sets
        report.update(outputs=sets[V.INPUT_SETS[0]],
                      input_sets={k: {"outputs": o, **V.worst(o)} for k, o in sets.items()}, **V.worst(sets))
        if sampled.samples:
            report.update(samples=sampled.samples, worst_sample=sampled.worst)
    if reason:
        report["reason"] = reason
    on = devices.kept(a, backend).get(devices.KEY, {})
    on[gpu] = devices.entry(report, keys.verdict(a, backend), "fusebuild gpu-validate")
    report[devices.KEY] = on
    report.setdefault("timings", {})["gpu_validate"] = round(time.perf_counter() - start, 4)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fusebuild gpu-validate", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out", help="build output folder (default out)")
    parser.add_argument("--specs", default="specs", help="spec folder the build used (default specs)")
    parser.add_argument("--json", help="also write every report into this one JSON file")
    args = parser.parse_args(argv)
    import torch
    project = Project(args.specs, args.out)
    for path, err in project.errors:
        print(f"skipping {path}: {err}", file=sys.stderr)
    arts = [a for a in project.artifacts if a.target == TARGET]
    if not arts:
        print(f"no {TARGET} artifacts in the specs under {args.specs}", file=sys.stderr)
        return 1
    backend = project.backend(TARGET)
    device = backend.device()
    if not device.available:
        print(f"cannot validate here: {device.reason}", file=sys.stderr)
        return 1
    gpu = torch.cuda.get_device_name()
    reports = []
    for a in arts:
        r = validate_one(a, backend, gpu)
        if a.dir.exists():
            write_json(a.report, r)
        reports.append(r)
        print(f"{r['status']:5} {a.id}  max_rel={r.get('max_rel')}  {r.get('reason', '')}", flush=True)
    rows = [[r["spec"], r["variant"], r["status"], f"{r.get('max_abs', 0) or 0:.2e}", f"{r.get('max_rel', 0) or 0:.2e}",
             f"{r.get('bound', 0) or 0:.2e}", f"{r.get('ratio', 0) or 0:.2e}"] for r in reports]
    print(table(["spec", "variant", "status", "max_abs", "max_rel", "bound", "ratio"], rows, rule=False))
    bad = [r for r in reports if r["status"] != Status.PASS]
    print(f"{gpu}: {len(reports) - len(bad)}/{len(reports)} {TARGET} artifacts pass")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": gpu, "torch": torch.__version__, "reports": reports},
                                              indent=1, default=str) + "\n")
    return 1 if bad else 0
