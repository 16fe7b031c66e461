"""mlir-cpu backend: render upstream MLIR on tensors, compile with IREE (llvm-cpu), run.

The rendered module uses only upstream dialects (func, linalg, arith, math, tensor;
render.py). IREE's dispatch formation puts a matmul and its elementwise consumer into
one dispatch, so a GEMM+epilogue spec compiles to one dispatch (tests check the count).

Files in the build folder:
  kernel.mlir        rendered MLIR (readable), from templates/mlir/; tile hints become a
                     `compilation_info` attribute on each linalg.matmul (render.py)
  plan.json          the resolved hints and the iree-compile flags they ask for (hints.py):
                     compile and assemble read the flags, so they are in both keys
  kernel.hal.mlir    IREE output after codegen (`--compile-to=executable-targets`):
                     host program + compiled dispatch executables        (compile)
  executables.mlir   the source of every dispatch executable, one per dispatch (compile)
  kernel.vmfb        the loadable module: VM bytecode + executables     (assemble;
                     runtime/mlir_cpu.py loads it)
"""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from ...errors import ToolchainError
from ...fsutil import read_json
from ...toolchains import cpu_key, package_version
from ..base import Backend as Base
from ..base import Rendered, Toolchain
from ..templating import make_env, used_templates
from .render import MlirRenderer

# The flags that define the code; their text is part of the compile cache key.
COMPILE_FLAGS = ("--iree-hal-target-device=local", "--iree-hal-local-target-device-backends=llvm-cpu",
                 "--iree-llvmcpu-target-cpu=host")
COMPILE_TIMEOUT = 600          # seconds per iree-compile: a runaway compile fails its task, named
# hint -> value -> the flags it adds (hints.py says what each does; unset: IREE's default)
HINT_FLAGS = {
    "data_tiling": lambda v: [f"--iree-opt-data-tiling={'true' if v else 'false'}"],
    "ukernels": lambda v: [f"--iree-llvmcpu-enable-ukernels={'all' if v else 'none'}"],
    "tile_bytes": lambda v: [f"--iree-llvmcpu-matmul-tile-bytes={int(v)}"],
}


def hint_flags(hints: dict) -> list:
    return [f for name, flags in HINT_FLAGS.items() if hints.get(name) is not None for f in flags(hints[name])]


class Backend(Base):
    source_files = ("kernel.mlir", "plan.json")
    compiled_files = ("kernel.hal.mlir", "executables.mlir")
    assemble_inputs = ("kernel.hal.mlir", "executables.mlir", "plan.json")
    artifact_name = "kernel.vmfb"
    template_folder = "mlir"

    def toolchain(self) -> Toolchain:
        versions = {p: package_version(p) for p in ("iree-base-compiler", "iree-base-runtime")}
        missing = [p for p, v in versions.items() if v is None]
        if missing:
            return Toolchain.missing(f"{' and '.join(missing)} not installed")
        return Toolchain(True, dict(versions, flags=" ".join(COMPILE_FLAGS), **{"llvm-host": cpu_key()}))

    def render(self, job) -> Rendered:
        env = make_env(self.template_folder)
        ctx = MlirRenderer(job, env.get_template("ops.j2").module).context()
        plan = {"hints": job.hints, "flags": hint_flags(job.hints)}
        return Rendered({"kernel.mlir": env.get_template("kernel.mlir.j2").render(**ctx),
                         "plan.json": json.dumps(plan, indent=1, sort_keys=True) + "\n"}, used_templates(env))

    def schedule(self, build_dir) -> dict:
        plan = read_json(Path(build_dir) / "plan.json") or {}
        return {"flags": plan.get("flags", [])}

    def static_parts(self, graph) -> tuple:
        """A row-wise dynamic graph's row functions (rows.py): each is the static graph."""
        from .rows import parts
        return parts(graph)

    def part_problem(self, used, winner) -> str | None:
        """Compile flags apply to the whole module: a row function takes a winner's tiles only
        if its flags are the artifact's."""
        a, b = hint_flags(self.info.hints.resolve(used)), hint_flags(self.info.hints.resolve(winner))
        if a == b:
            return None
        return f"its flags {' '.join(b) or '(none)'} are not the artifact's {' '.join(a) or '(none)'}"

    # --- compile / assemble / run -------------------------------------------------------
    def compile(self, build_dir, dest):
        """MLIR -> IREE's executable-targets phase: dispatches formed and code-generated."""
        build_dir, dest = Path(build_dir), Path(dest)
        dumps = Path(tempfile.mkdtemp(dir=dest, prefix=".dispatches-")).resolve()
        try:
            _iree_compile(build_dir / "kernel.mlir", dest / "kernel.hal.mlir", *_plan_flags(build_dir),
                          "--compile-to=executable-targets", f"--iree-hal-dump-executable-sources-to={dumps}")
            text = "".join(f"// ----- {p.name}\n{p.read_text()}\n" for p in sorted(dumps.glob("*.mlir")))
        finally:
            shutil.rmtree(dumps, ignore_errors=True)
        (dest / "executables.mlir").write_text(text)

    def assemble(self, build_dir, dest):
        """Serialize the host program and the executables into one .vmfb."""
        _iree_compile(Path(build_dir) / "kernel.hal.mlir", Path(dest) / self.artifact_name,
                      *_plan_flags(build_dir), "--compile-from=executable-targets")

    def run(self, build_dir, graph, inputs: dict) -> dict:
        """Through the runtime (runtime/mlir_cpu.py): validation runs what fusebuild.load runs."""
        from ...runtime.call import run
        return run(self.name, build_dir, graph, inputs)


def _plan_flags(build_dir) -> list:
    return list((read_json(Path(build_dir) / "plan.json") or {}).get("flags", []))


def _iree_compile(src: Path, out: Path, *flags):
    """Run iree-compile as a subprocess (the Python wrapper writes bytes to sys.stderr,
    which doit has replaced by a text capture); its diagnostics become the error."""
    from iree.compiler.tools.binaries import find_tool

    # run in the source's folder and name it by its file name: IREE embeds the input path
    # in the .vmfb, and an artifact must not depend on where its build folder is
    cmd = [find_tool("iree-compile"), src.name, *COMPILE_FLAGS, *flags, "-o", str(Path(out).resolve())]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT, cwd=src.parent)
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"iree-compile did not finish in {COMPILE_TIMEOUT} s", path=str(src)) from None
    if proc.returncode != 0:
        raise ToolchainError(f"iree-compile exited {proc.returncode}: {_first_error(proc.stderr)}",
                             path=str(src))


def dispatch_count(executables_text: str) -> int:
    """How many dispatches a compiled module launches: one export per dispatch function."""
    return executables_text.count("hal.executable.export")


def _first_error(stderr: str) -> str:
    """iree-compile's first diagnostic, without the megabyte of target attributes after it."""
    lines = [ln if len(ln) <= 300 else ln[:300] + " ..." for ln in stderr.strip().splitlines()]
    start = next((i for i, ln in enumerate(lines) if "error:" in ln), 0)
    return "\n".join(lines[start:start + 12])
