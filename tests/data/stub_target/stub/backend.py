"""The stub target: each fused group becomes torch code, written from templates/stub/.

  kernel.py    render: a Python function `main(**inputs) -> {output: tensor}`
  kernel.code  compile: its code object (marshal)
  kernel.bin   assemble: the loadable artifact (the same bytes)

It shows the shape of a backend; a real one renders its IR and calls its toolchain in
compile and assemble. It runs nowhere but in tests/test_backends_recipe.py.
"""
from __future__ import annotations

import marshal
import shutil
from pathlib import Path

from fusebuild.backends.base import Backend as Base, Rendered, Toolchain
from fusebuild.backends.templating import make_env, used_templates
from fusebuild.backends.text import group_comment, header
from fusebuild.ir.graph import fold, fuse
from fusebuild.toolchains import package_version


class Backend(Base):
    source_files = ("kernel.py",)
    compiled_files = ("kernel.code",)
    artifact_name = "kernel.bin"
    template_folder = "stub"

    def toolchain(self) -> Toolchain:
        return Toolchain(True, {"torch": package_version("torch")})

    def render(self, job) -> Rendered:
        env = make_env(self.template_folder)
        ops = env.get_template("ops.j2").module

        def call(op, args, attrs):
            return str(getattr(ops, op)(*args, **attrs))
        groups = []
        for g in fuse(job.graph):
            mm = g.matmul
            groups.append({"out": g.output, "comment": group_comment(g), "store": fold(g.expr, lambda: "acc",
                                                                                       lambda name: name, call),
                           "matmul": None if mm is None else {"a": mm.inputs[0], "b": mm.inputs[1],
                                                              "transpose_b": mm.attr["transpose_b"]}})
        text = env.get_template("kernel.py.j2").render(**header(job, self.name), inputs=list(job.graph.inputs),
                                                       outputs=list(job.graph.outputs), groups=groups,
                                                       unroll=job.hints["unroll"])
        return Rendered({"kernel.py": text}, used_templates(env))

    def compile(self, build_dir, dest):
        code = compile((Path(build_dir) / "kernel.py").read_text(), "kernel.py", "exec")
        (Path(dest) / "kernel.code").write_bytes(marshal.dumps(code))

    def assemble(self, build_dir, dest):
        shutil.copyfile(Path(build_dir) / "kernel.code", Path(dest) / self.artifact_name)

    def run(self, build_dir, graph, inputs: dict) -> dict:
        namespace = {}
        exec(marshal.loads((Path(build_dir) / self.artifact_name).read_bytes()), namespace)  # noqa: S102
        return namespace["main"](**{n: inputs[n] for n in graph.inputs})
