"""tir-cpu backend: render TVMScript, schedule it, compile with LLVM, link, run.

Files in the build folder:
  kernel.py      rendered TVMScript (unscheduled, readable), from templates/tir/ (render.py)
  plan.json      what the scheduler needs: GEMM groups (block names, M/N/K, a dynamic M), hints,
                 and a dynamic kernel's rows/tiles dispatch
  scheduled.py   the scheduled TIR, printed back (readable; what was compiled)
  schedule.json  the schedule each GEMM got: resolved tiles, path, and why any hint was reduced
  kernel.o       LLVM object (compile)
  kernel.so      shared library loadable by TVM's runtime (assemble; runtime/tir_cpu.py loads it)
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from ...errors import ToolchainError
from ...fsutil import read_json
from ...toolchains import cpu_key, package_version
from ..base import Backend as Base
from ..base import Rendered, Toolchain
from ..templating import make_env, used_templates
from .render import TirRenderer

LINK_TIMEOUT = 300          # seconds for the linker: a hung one fails its task, named


class Backend(Base):
    source_files = ("kernel.py", "plan.json")
    compiled_files = ("kernel.o", "scheduled.py", "schedule.json")
    artifact_name = "kernel.so"
    template_folder = "tir"

    def toolchain(self) -> Toolchain:
        tvm = package_version("apache-tvm")
        if tvm is None:
            return Toolchain.missing("apache-tvm is not installed")
        # the schedule sizes its parallel tiles by the host's cores (hint `threads` unset): in every key
        return Toolchain(True, {"apache-tvm": tvm, "llvm-host": cpu_key(), "host-cores": str(os.cpu_count() or 1)})

    def render(self, job) -> Rendered:
        env = make_env(self.template_folder)
        ctx, plan = TirRenderer(job, env.get_template("ops.j2").module).context()
        text = env.get_template("kernel.py.j2").render(**ctx)
        return Rendered({"kernel.py": text, "plan.json": json.dumps(plan, indent=1) + "\n"}, used_templates(env))

    def compile(self, build_dir, dest):
        import tvm

        from .lower import pipeline
        from .schedule import GemmSchedule, host_target, schedule

        build_dir, dest = Path(build_dir), Path(dest)
        func = tvm.script.from_source((build_dir / "kernel.py").read_text())
        plan = json.loads((build_dir / "plan.json").read_text())
        hints = dict(plan["hints"])
        threads = hints.pop("threads", None) or os.cpu_count() or 1
        def gemms(side, rows=False):
            return [GemmSchedule(g["matmul_block"], g["epilogue_block"], g["m"], g["n"], g["k"], g["transpose_b"],
                                 hints, g.get("m_dynamic"), rows) for g in side["gemms"]]
        rows = plan.get("rows")
        mod, record = schedule(func, gemms(plan), plan["elementwise_blocks"], threads,
                               (gemms(rows, True), rows["elementwise_blocks"]) if rows else None)
        (dest / "scheduled.py").write_text(mod.script())
        (dest / "schedule.json").write_text(json.dumps(dict(record, threads=threads), indent=1) + "\n")
        tvm.compile(mod, target=host_target(), tir_pipeline=pipeline()).mod.write_to_file(str(dest / "kernel.o"))

    def assemble(self, build_dir, dest):
        """Link kernel.o into kernel.so: the command tvm.support.cc.create_shared runs, with a timeout."""
        from tvm.support import cc
        cmd = [cc.get_cc() or "cc", "-shared", "-fPIC", "-o", str(Path(dest) / self.artifact_name),
               str(Path(build_dir) / "kernel.o")]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=LINK_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise ToolchainError(f"the linker did not finish in {LINK_TIMEOUT} s: {' '.join(cmd)}") from None
        if proc.returncode:
            raise ToolchainError(f"the linker exited {proc.returncode}: {(proc.stdout + proc.stderr)[-2000:]}")

    def run(self, build_dir, graph, inputs: dict) -> dict:
        """Through the runtime (runtime/tir_cpu.py): validation runs what fusebuild.load runs."""
        from ...runtime.call import run
        return run(self.name, build_dir, graph, inputs)

    def schedule(self, build_dir) -> dict:
        return read_json(Path(build_dir) / "schedule.json", {})
