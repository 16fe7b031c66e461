"""Where an artifact was validated: one verdict per device, kept across machines.

A tir-cuda artifact is built on a machine without a GPU (`built-not-validated`) and
validated on one with (`fusebuild gpu-validate`). validation.json keeps each device's
verdict under `verdicts` (next to `validated_on`, the kind of device the report's own
status comes from, runtime/targets.here):

    "verdicts": {"NVIDIA H200": {"status": "pass", "ratio": 0.03, "max_abs": ...,
                                 "validated_on": {"kind": "cuda", "capability": "sm_90", ...},
                                 "verdict_key": "<sha256>", "validated_by": "...", "when": "..."}}

A build on a machine that cannot run the artifact rewrites the report's own status
(`built-not-validated`: true of this machine) but keeps every device verdict whose
`verdict_key` (plan/keys.verdict: graph, seed, tolerances, mode, the code that runs and
judges it, the artifact's bytes) still matches; a verdict for other bytes or other code
is dropped, never shown as current. A kept `fail` fails the build here too: the artifact
is known to be wrong.
"""
from __future__ import annotations

import time

from ..fsutil import read_json
from ..plan import keys
from ..status import Status

KEY = "verdicts"
SHOWN = ("status", "max_abs", "max_rel", "ratio", "bound", "validated_on")


def entry(report: dict, key: str, validated_by: str) -> dict:
    """One device's verdict, from the report of the validation that ran there."""
    return {**{k: report.get(k) for k in SHOWN}, "reason": report.get("reason"), "verdict_key": key,
            "validated_by": validated_by, "when": time.strftime("%Y-%m-%d %H:%M:%S")}


def kept(a, backend) -> dict:
    """{"verdicts": {...}} with the verdicts of the previous report still valid for `a`."""
    old = (read_json(a.report) or {}).get(KEY) or {}
    if not old or not isinstance(old, dict):
        return {}
    key = keys.verdict(a, backend)
    still = {dev: e for dev, e in old.items() if isinstance(e, dict) and e.get("verdict_key") == key}
    return {KEY: still} if still else {}


def record(a, backend, device, report: dict) -> dict:
    """{"verdicts": ...}: the kept verdicts plus this run's, when it ran on a named device."""
    out = kept(a, backend).get(KEY, {})
    if device is not None and device.name:
        out[device.name] = entry(report, keys.verdict(a, backend), "doit build")
    return {KEY: out} if out else {}


def failed_elsewhere(a, report: dict) -> str | None:
    """Why the build fails here if a kept verdict says the artifact fails on its device."""
    bad = [(dev, e) for dev, e in (report.get(KEY) or {}).items() if e.get("status") == Status.FAIL]
    if not bad:
        return None
    dev, e = bad[0]
    return (f"validate {a.id}: FAIL on {dev} ({e.get('validated_by')}, {e.get('when')}): "
            f"{e.get('reason') or 'over its bound'}")


def shown(report: dict) -> str:
    """'pass on NVIDIA H200' (and others), or '' when no device verdict is kept (the summary
    shows 'pass on NVIDIA H200 (not run here)')."""
    on = report.get(KEY) or {}
    return "; ".join(f"{e.get('status')} on {dev}" for dev, e in sorted(on.items()) if isinstance(e, dict))
