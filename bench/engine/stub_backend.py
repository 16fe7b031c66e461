"""A stub target for the engine benchmark only: render writes the graph as JSON, compile
and assemble copy bytes, run returns the torch reference. Every stage is ~free, so a
build's time is fusebuild's (and doit's) own overhead. Registered by bench/engine/dodo.py."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from fusebuild.backends.base import Backend as Base, Rendered, Toolchain


class Backend(Base):
    source_files = ("kernel.txt",)
    compiled_files = ("kernel.o",)
    artifact_name = "kernel.bin"
    template_folder = "stub"

    def toolchain(self) -> Toolchain:
        return Toolchain(True, {"stub": "1"})

    def render(self, job) -> Rendered:
        return Rendered({"kernel.txt": json.dumps(job.graph.canonical(), sort_keys=True) + "\n"},
                        {"folder": "stub", "templates": {}})

    def compile(self, build_dir, dest):
        shutil.copyfile(Path(build_dir) / "kernel.txt", Path(dest) / "kernel.o")

    def assemble(self, build_dir, dest):
        shutil.copyfile(Path(build_dir) / "kernel.o", Path(dest) / "kernel.bin")

    def run(self, build_dir, graph, inputs):
        from fusebuild.run import validate
        return validate.reference(graph, inputs)
