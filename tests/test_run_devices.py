"""Device verdicts are kept (issue 15, item 3): a build on a machine without the device
does not erase a verdict given where the device is (gpu-validate), the summary shows it,
and a verdict for other bytes is dropped, never shown as current.

The target is tir-cpu's backend with a device that is never here (tests/stub_targets.py):
the stages run in-process, gpu-validate's `validate_one` runs the artifact on the CPU."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fusebuild.backends import TargetInfo
from fusebuild.backends.tir_cpu.hints import HINTS
from fusebuild.engine.summary import summary_rows
from fusebuild.fsutil import write_json
from fusebuild.plan.project import Project
from fusebuild.run import gpu_validate, stages
from fusebuild.status import Status

SPEC = """\
name: dev
params: {M: [4], N: 16, K: 32}
inputs:
  x: {shape: [M, K], dtype: float32}
  w: {shape: [N, K], dtype: float32}
graph:
  - {op: matmul, inputs: [x, w], output: y, transpose_b: true, epilogue: [relu]}
outputs: [y]
targets: [gpu-stub]
"""
pytestmark = pytest.mark.slow      # three tir-cpu compiles

TARGETS = {"gpu-stub": TargetInfo("gpu-stub", "stub_targets", ("float32",), HINTS, "tir-cpu without its device")}


def built(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSEBUILD_CACHE", "off")
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs/dev.yaml").write_text(SPEC)
    p = Project(tmp_path / "specs", tmp_path / "out", targets=TARGETS)
    (a,) = p.artifacts
    for stage in (stages.render, stages.compile, stages.assemble):
        assert stage(p, a) is None
    return p, a


def report(a) -> dict:
    return json.loads(Path(a.report).read_text())


def validate_on_gpu(p, a, gpu="FAKE GPU"):
    """What `fusebuild gpu-validate` does on the device's machine (here: the CPU runs it)."""
    r = gpu_validate.validate_one(a, p.backend(a.target), gpu, device="cpu")
    write_json(a.report, r)
    return r


def test_cpu_build_keeps_the_devices_verdict(tmp_path, monkeypatch):
    p, a = built(tmp_path, monkeypatch)
    assert stages.validate(p, a) is None and report(a)["status"] == Status.NOT_VALIDATED
    r = validate_on_gpu(p, a)
    assert r["status"] == Status.PASS and r["verdicts"]["FAKE GPU"]["status"] == Status.PASS
    assert set(r["input_sets"]) == {"linear", "wide"}
    assert stages.validate(p, a) is None                     # a later build on a machine without it
    after = report(a)
    assert after["status"] == Status.NOT_VALIDATED             # true of this machine
    assert after["verdicts"]["FAKE GPU"]["status"] == Status.PASS
    status = summary_rows([after])[0][3]
    assert status == "pass on FAKE GPU (not run here)", status


def test_a_verdict_for_other_bytes_is_dropped(tmp_path, monkeypatch):
    p, a = built(tmp_path, monkeypatch)
    validate_on_gpu(p, a)
    so = a.dir / "kernel.so"                                  # another artifact now (a new file, as a
    (a.dir / "new.so").write_bytes(so.read_bytes() + b"\0")   # rebuild writes: the loaded one stays mapped)
    os.replace(a.dir / "new.so", so)
    stages.validate(p, a)
    assert "verdicts" not in report(a)
    assert "FAKE GPU" not in summary_rows([report(a)])[0][3]


def test_a_kept_fail_fails_the_build_here(tmp_path, monkeypatch):
    p, a = built(tmp_path, monkeypatch)
    r = validate_on_gpu(p, a)
    r["verdicts"]["FAKE GPU"].update(status="fail", reason="y: 3 mismatches")
    write_json(a.report, r)
    failed = stages.validate(p, a)
    assert failed is not None and "FAIL on FAKE GPU" in failed.message and "y: 3 mismatches" in failed.message
    assert summary_rows([report(a)])[0][3] == "fail on FAKE GPU (not run here)"
