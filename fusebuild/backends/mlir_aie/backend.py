"""mlir-aie backend: render an IRON-style MLIR-AIE design and its kernel sources, check the
design against mlir-aie's rules, compile where Peano / aiecc are installed, and validate
(on an NPU where there is one, else emulated).

Files in the build folder:
  design.mlir        rendered design (templates/aie/), one for the whole graph, written for
                     mlir-aie v1.3.1 (version.py)
  kernels.cc         every kernel the design links, rendered (templates/aie/kernels/)
  design.check.json  compile: the rules check (rules.py) and which compile steps ran
  kernels.o          compile, only where Peano (PEANO_INSTALL_DIR) is found
  aiecc/             compile, only where `aiecc` is on PATH and kernels.o exists
  artifact.json      assemble: the pinned mlir-aie version, files, steps and their state

Render, rules check and emulation run everywhere. Validation is reported `emulated`
(never `pass`) with the reason, unless the NPU ran it; each step says ran / pass /
not-run: <why>.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ...fsutil import read_json, write_json
from ...hashing import sha256
from ...status import Status
from ...toolchains import package_version
from ..base import Backend as Base
from ..base import Execution, Rendered, Toolchain, host_buffers, host_outputs
from ..templating import make_env, used_templates
from . import aieparse, rules
from .version import KERNEL_OBJECT, MLIR_AIE, aiecc_command, peano_command

XRT_ROOTS = ("/opt/xilinx/xrt",)


def find_aiecc():
    return shutil.which("aiecc") or shutil.which("aiecc.py")


def find_peano():
    """The llvm-aie (Peano) install named by PEANO_INSTALL_DIR, if it has clang++."""
    root = os.environ.get("PEANO_INSTALL_DIR", "")
    return root if root and (Path(root) / "bin" / "clang++").exists() else None


def npu_device():
    """(True, '') when an NPU and XRT are present, else (False, why)."""
    accel = sorted(Path("/dev/accel").glob("accel*")) if Path("/dev/accel").is_dir() else []
    if not accel:
        return False, "no NPU device (/dev/accel/accel* absent)"
    if not any(Path(r).is_dir() for r in XRT_ROOTS):
        return False, "no XRT (/opt/xilinx/xrt absent)"
    return True, ""


def _version(tool) -> str:
    try:
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=60)
        text = (out.stdout + out.stderr).strip()
        return text.splitlines()[0] if text else "?"
    except (OSError, subprocess.SubprocessError) as err:
        return f"broken: {err}"


class Backend(Base):
    source_files = ("design.mlir", "kernels.cc")
    compiled_files = ("design.check.json",)
    artifact_name = "artifact.json"
    template_folder = "aie"

    def toolchain(self) -> Toolchain:
        aiecc, peano = find_aiecc(), find_peano()
        ok, why = npu_device()
        # always available: render, rules check and emulation need only Python and torch
        return Toolchain(True, {"mlir-aie-target": MLIR_AIE, "aiecc": _version(aiecc) if aiecc else "absent",
                                "peano": _version(f"{peano}/bin/clang++") if peano else "absent",
                                "npu": "present" if ok else why,
                                "torch": package_version("torch")})

    # --- render -------------------------------------------------------------------------------
    def render(self, job) -> Rendered:
        from .design import context
        from .fit import fit
        from .kernelsrc import kernel_context

        graph = job.graph
        _, tiling, plan = fit(graph, job.hints)
        ctx = context(plan, graph)
        env = make_env(self.template_folder, counts=_loop_counts)
        design = env.get_template("design.mlir.j2").render(**ctx)
        kernels = env.get_template("kernels/kernels.cc.j2").render(**kernel_context(plan, graph))
        return Rendered({"design.mlir": design, "kernels.cc": kernels}, used_templates(env))

    # --- compile: rules check here, Peano and aiecc where they exist -------------------------
    def compile(self, build_dir, dest):
        build_dir, dest = Path(build_dir), Path(dest)
        path = build_dir / "design.mlir"
        text = path.read_text()
        design = aieparse.parse(text, str(path))
        summary = rules.check(design, str(path))
        steps = {"render": f"ran: design.mlir + kernels.cc for mlir-aie {MLIR_AIE}", "rules-check": "pass"}
        peano, aiecc = find_peano(), find_aiecc()
        work = dest / "build"          # tool outputs; only made when a tool runs
        shutil.rmtree(build_dir / "build", ignore_errors=True)
        if peano is None:
            steps["kernel-compile"] = "not-run: no Peano (llvm-aie): set PEANO_INSTALL_DIR to an llvm-aie install"
        else:
            work.mkdir()
            shutil.copy(build_dir / "kernels.cc", work / "kernels.cc")
            mlir_aie = str(Path(aiecc).resolve().parent.parent) if aiecc else os.environ.get("MLIR_AIE_INSTALL_DIR", "")
            self._run(peano_command(peano, mlir_aie, design.device, "kernels.cc", KERNEL_OBJECT), work, "Peano")
            steps["kernel-compile"] = f"ran: {KERNEL_OBJECT} (Peano {_version(peano + '/bin/clang++')})"
        if aiecc is None:
            steps["aiecc"] = "not-run: aiecc (mlir-aie) is not on PATH; mlir-aie is not installable here"
        elif peano is None:
            steps["aiecc"] = "not-run: the cores link kernels.o, which needs Peano"
        else:
            shutil.copy(path, work / "design.mlir")
            self._run(aiecc_command(aiecc, peano, "design.mlir"), work, "aiecc")
            steps["aiecc"] = "ran: final.xclbin + insts.bin"
        write_json(dest / "design.check.json", dict(summary, steps=steps, mlir_aie=MLIR_AIE,
                                                    design_sha256=_sha(text),
                                                    kernels_sha256=_sha((build_dir / "kernels.cc").read_text())))

    @staticmethod
    def _run(cmd, cwd, what):
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=3600)
        if proc.returncode:
            raise RuntimeError(f"{what} failed ({proc.returncode}): {' '.join(cmd)}\n"
                               f"{(proc.stdout + proc.stderr)[-3000:]}")

    def assemble(self, build_dir, dest):
        check = read_json(Path(build_dir) / "design.check.json")
        xclbin = Path(build_dir) / "build" / "final.xclbin"
        write_json(Path(dest) / self.artifact_name, {
            "mlir_aie": check["mlir_aie"], "design": "design.mlir", "kernels": "kernels.cc",
            "design_sha256": check["design_sha256"], "kernels_sha256": check["kernels_sha256"],
            "xclbin": str(xclbin.relative_to(build_dir)) if xclbin.exists() else None, "steps": check["steps"]})

    # --- run: on the NPU where possible, else emulated from the rendered text ----------------
    def run(self, build_dir, graph, inputs: dict) -> dict:
        from .emulate import emulate

        build_dir = Path(build_dir)
        path = build_dir / "design.mlir"
        design = aieparse.parse(path.read_text(), str(path))
        rules.check(design, str(path))       # the emulator refuses whatever the checker refuses
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
        steps["emulation"] = ("ran: design.mlir parsed and rules-checked again, its DMA patterns and links executed "
                              "on host buffers, its kernels run with the kernels' arithmetic (numerics.py)")
        steps["mlir-aie"] = f"design written for mlir-aie {manifest.get('mlir_aie', MLIR_AIE)}"
        return Execution(Status.EMULATED, "validated by emulating design.mlir on the host; " + steps["npu-run"], steps)


def _sha(text) -> str:
    return sha256(text.encode())


def _loop_counts(body) -> list:
    """The loop trip counts of a core body that need an index constant (not 0 or 1)."""
    found = set()
    for s in aieparse.walk(body):
        if s["op"] == "for":
            found.add(s["count"])
    return sorted(found - {0, 1})
