"""`fusebuild gpu-validate`: validate built tir-cuda artifacts on this machine's GPU.

A build machine without a GPU leaves each tir-cuda artifact `built-not-validated`. On any
machine with a Hopper GPU, torch, pyyaml and jinja2 (no doit, TVM, TileLang or IREE are
imported on this path), this command finds those artifacts under --out for the specs in
--specs, rebuilds the inputs with the same seeds (validate.make_inputs: CPU generator,
identical everywhere), computes the torch reference on the GPU, runs the artifact through
the ctypes loader (NaN-poisoned outputs), compares with validate.compare under the same
K-scaled tolerance as `doit build`, and rewrites each validation.json with status
pass/fail and the GPU's name. Exit code 1 if any artifact fails or is missing.

A later `doit build` on a machine without a GPU rewrites those reports back to
built-not-validated (its validate task owns validation.json): keep the GPU's copy.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..fsutil import read_json, write_json
from ..plan.project import Project
from ..runtime.targets import here
from ..status import Status
from ..tables import table
from . import validate as V
from .samples import run_samples

TARGET = "tir-cuda"


def validate_one(a, backend, gpu: str) -> dict:
    import torch
    v = a.variant
    report = read_json(a.report) or {"spec": v.spec, "variant": v.name, "target": a.target, "params": v.params,
                                     "seed": v.seed, "mode": v.mode}
    if v.mode != "fused":
        return dict(report, status=Status.NOT_RUN, reason=f"gpu-validate runs fused artifacts only (mode {v.mode})")
    if not all((a.dir / f).exists() for f in backend.artifact_files):
        return dict(report, status=Status.NOT_RUN, reason="artifact not built: run `doit build` first")
    start = time.perf_counter()
    try:
        sampled = run_samples(a, backend, ref_device="cuda")   # a dynamic artifact: at each sample size
    except Exception as err:
        return dict(report, status=Status.FAIL, reason=f"run failed: {type(err).__name__}: {err}"[-2000:], device=gpu)
    status, reason = V.verdict(sampled.outputs, sampled.ok)
    report = {k: x for k, x in report.items() if k not in ("reason", "artifacts", "samples", "worst_sample")}
    report.update(status=status, outputs=sampled.outputs, device=gpu, validated_on=here(TARGET),
                  validated_by="fusebuild gpu-validate", torch_gpu=torch.__version__, **V.worst(sampled.outputs))
    if sampled.samples:
        report.update(samples=sampled.samples, worst_sample=sampled.worst)
    if reason:
        report["reason"] = reason
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
             f"{r.get('rtol', 0) or 0:.2e}"] for r in reports]
    print(table(["spec", "variant", "status", "max_abs", "max_rel", "rtol"], rows, rule=False))
    bad = [r for r in reports if r["status"] != Status.PASS]
    print(f"{gpu}: {len(reports) - len(bad)}/{len(reports)} {TARGET} artifacts pass")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": gpu, "torch": torch.__version__, "reports": reports},
                                              indent=1, default=str) + "\n")
    return 1 if bad else 0
