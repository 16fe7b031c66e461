"""mlir-aie backend: render an IRON-style MLIR-AIE design, check it, compile it where
mlir-aie is installed, and validate it (on an NPU where there is one, else emulated).

Files in the build folder:
  design.mlir        rendered design (templates/aie/), one for the whole graph
  design.check.json  compile: the strict structural check of design.mlir (aieparse)
  aiecc/             compile, only where `aiecc` is on PATH: final.xclbin, insts.bin
  artifact.json      assemble: what exists and which steps ran or did not, and why

What runs where (docs/npu.md): render, check and emulation run everywhere; aiecc only
where it is on PATH; the NPU run needs an NPU (/dev/accel) and XRT. Validation is then
reported as `emulated` with the reason, never `pass`, unless the NPU ran it.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from ...fsutil import read_json, write_json
from ...status import Status
from ...toolchains import package_version
from ..base import Backend as Base
from ..base import Execution, Rendered, Toolchain, host_buffers, host_outputs
from ..templating import make_env, used_templates
from ..text import header
from . import aieparse
from .design import build_design

EMULATOR_VERSION = "1"     # bump when emulate.py's semantics change (part of the cache key)
XRT_ROOTS = ("/opt/xilinx/xrt",)


def find_aiecc():
    return shutil.which("aiecc") or shutil.which("aiecc.py")


def aiecc_flags(help_text: str) -> list:
    """Flags that make xclbin + NPU instructions, for the driver whose --help we read.
    The older Python driver spells them --aie-generate-*, the newer C++ one --get-*."""
    if "--aie-generate-xclbin" in help_text:
        return ["--aie-generate-xclbin", "--aie-generate-npu-insts", "--no-compile-host",
                "--xclbin-name=final.xclbin", "--npu-insts-name=insts.bin"]
    if "--get-xclbin" in help_text:
        return ["--get-xclbin", "--get-npu-insts", "--xclbin-name=final.xclbin", "--npu-insts-name=insts.bin"]
    raise RuntimeError("aiecc --help names neither --aie-generate-xclbin nor --get-xclbin: unknown driver")


def npu_device():
    """(True, '') when an NPU and XRT are present, else (False, why)."""
    accel = sorted(Path("/dev/accel").glob("accel*")) if Path("/dev/accel").is_dir() else []
    xrt = [r for r in XRT_ROOTS if Path(r).is_dir()]
    if not accel:
        return False, "no NPU device (/dev/accel/accel* absent)"
    if not xrt:
        return False, "no XRT (/opt/xilinx/xrt absent)"
    return True, ""


class Backend(Base):
    source_files = ("design.mlir",)
    compiled_files = ("design.check.json",)
    artifact_name = "artifact.json"
    template_folder = "aie"

    def toolchain(self) -> Toolchain:
        aiecc = find_aiecc()
        version = "absent"
        if aiecc:
            try:
                out = subprocess.run([aiecc, "--version"], capture_output=True, text=True, timeout=60)
                said = (out.stdout + out.stderr).strip()
                version = said.splitlines()[0] if said else "?"
            except (OSError, subprocess.SubprocessError) as err:
                version = f"broken: {err}"
        ok, why = npu_device()
        # always available: render, check and emulation need only Python and torch
        return Toolchain(True, {"mlir-aie": version, "aie-emulator": EMULATOR_VERSION,
                                "npu": "present" if ok else why, "torch": package_version("torch")})

    # --- render -------------------------------------------------------------------------
    def render(self, job) -> Rendered:
        ctx = build_design(job.graph, job.hints)

        def counts(body):
            found = set()

            def walk(b):
                for s in b:
                    if s["op"] == "for":
                        found.add(s["count"])
                        walk(s["body"])
            walk(body)
            return sorted(found - {0, 1})

        env = make_env(self.template_folder, counts=counts)
        text = env.get_template("design.mlir.j2").render(**header(job, self.name), **ctx)
        return Rendered({"design.mlir": text}, used_templates(env))

    # --- compile: strict check here, aiecc where it exists --------------------------------
    def compile(self, build_dir, dest):
        build_dir, dest = Path(build_dir), Path(dest)
        path = build_dir / "design.mlir"
        text = path.read_text()
        summary = aieparse.check(aieparse.parse(text, str(path)), str(path))
        steps = {"structural-check": "pass"}
        aiecc = find_aiecc()
        if aiecc is None:
            steps["aiecc"] = "not-run: aiecc (mlir-aie) is not on PATH; mlir-aie is not installable here"
        else:
            help_text = subprocess.run([aiecc, "--help"], capture_output=True, text=True, timeout=120).stdout
            work = dest / "aiecc"
            work.mkdir()
            shutil.copy(path, work / "design.mlir")
            proc = subprocess.run([aiecc, *aiecc_flags(help_text), "design.mlir"], cwd=work, capture_output=True,
                                  text=True, timeout=3600)
            if proc.returncode:
                raise RuntimeError(f"aiecc failed ({proc.returncode}): {(proc.stdout + proc.stderr)[-3000:]}")
            steps["aiecc"] = "ran: final.xclbin + insts.bin"
        write_json(dest / "design.check.json", dict(summary, steps=steps,
                                                    design_sha256=hashlib.sha256(text.encode()).hexdigest()))

    def assemble(self, build_dir, dest):
        check = read_json(Path(build_dir) / "design.check.json")
        xclbin = Path(build_dir) / "aiecc" / "final.xclbin"
        write_json(Path(dest) / self.artifact_name, {
            "design": "design.mlir", "design_sha256": check["design_sha256"],
            "xclbin": str(xclbin.relative_to(build_dir)) if xclbin.exists() else None,
            "steps": check["steps"]})

    # --- run: on the NPU where possible, else emulated from the rendered text ------------
    def run(self, build_dir, graph, inputs: dict) -> dict:
        from .emulate import emulate

        build_dir = Path(build_dir)
        text = (build_dir / "design.mlir").read_text()
        design = aieparse.parse(text, str(build_dir / "design.mlir"))
        aieparse.check(design, str(build_dir / "design.mlir"))
        buffers = host_buffers(graph, inputs)
        names = list(graph.inputs) + list(graph.outputs)
        if [ssa for ssa, _ in design.args] != [f"%arg{i}" for i in range(len(names))]:
            raise RuntimeError(f"runtime_sequence takes {len(design.args)} arguments, the graph has {len(names)}")
        host = {f"%arg{i}": buffers[n].reshape(-1) for i, n in enumerate(names)}
        emulate(design, host)
        for i, n in enumerate(graph.outputs, len(graph.inputs)):
            buffers[n] = host[f"%arg{i}"].reshape(buffers[n].shape)
        return host_outputs(graph, buffers)

    def execution(self, build_dir) -> Execution:
        manifest = read_json(Path(build_dir) / self.artifact_name) or {}
        steps = dict(manifest.get("steps", {}))
        ok, why = npu_device()
        if not manifest.get("xclbin"):
            steps["npu-run"] = "not-run: no xclbin (aiecc did not run)" + ("" if ok else f"; {why}")
        elif not ok:
            steps["npu-run"] = f"not-run: {why}"
        else:
            steps["npu-run"] = "not-run: running xclbins through XRT is not implemented in fusebuild yet"
        steps["emulation"] = "ran: runtime-sequence DMA patterns parsed from design.mlir, tiles run with torch"
        return Execution(Status.EMULATED, "validated by emulating design.mlir on the host; " + steps["npu-run"], steps)
