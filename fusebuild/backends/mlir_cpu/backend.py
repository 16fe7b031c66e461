"""mlir-cpu backend: render upstream MLIR on tensors, compile with IREE (llvm-cpu), run.

The rendered module uses only upstream dialects (func, linalg, arith, math, tensor):
each fused group (graph.fuse) is a `linalg.matmul` (transposed B through its indexing
maps) followed by one `linalg.generic` holding the whole epilogue, or a lone
`linalg.generic` for an elementwise group. IREE's dispatch formation puts a matmul and
its elementwise consumer into one dispatch, so a GEMM+epilogue spec compiles to one
dispatch (tests/test_mlir_cpu.py checks the count). An input with a layout arrives as
a flat buffer and is unpacked (expand_shape, transpose, collapse_shape) from the same
layouts.Layout the other backends use.

Files in the build folder:
  kernel.mlir        rendered MLIR (readable), from templates/mlir/
  kernel.hal.mlir    IREE output after codegen (`--compile-to=executable-targets`):
                     host program + compiled dispatch executables        (compile)
  executables.mlir   the source of every dispatch executable, one per dispatch (compile)
  kernel.vmfb        the loadable module: VM bytecode + executables     (assemble)
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from ... import ops as opdefs
from ...errors import ToolchainError
from ...graph import broadcast_index, fold, fuse
from ...render import make_env, used_templates
from ...toolchains import cpu_key, package_version
from .. import Base

MLIR_TYPES = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}
# The flags that define the code; their text is part of the compile cache key.
COMPILE_FLAGS = ("--iree-hal-target-device=local", "--iree-hal-local-target-device-backends=llvm-cpu",
                 "--iree-llvmcpu-target-cpu=host")
DRIVER = "local-task"


class Backend(Base):
    source_files = ("kernel.mlir",)
    compiled_files = ("kernel.hal.mlir", "executables.mlir")
    artifact_name = "kernel.vmfb"
    template_folder = "mlir"

    def toolchain(self) -> dict:
        versions = {p: package_version(p) for p in ("iree-base-compiler", "iree-base-runtime")}
        missing = [p for p, v in versions.items() if v is None]
        if missing:
            return {"available": False, "versions": {}, "reason": f"{' and '.join(missing)} not installed"}
        return {"available": True, "reason": "",
                "versions": dict(versions, flags=" ".join(COMPILE_FLAGS), **{"llvm-host": cpu_key()})}

    # --- render (pure text) -----------------------------------------------------------
    def render(self, graph, hints: dict, source: str = "", variant: str = "") -> dict:
        env = make_env(self.template_folder, SQRT_HALF=_float(opdefs.SQRT_HALF),
                       SQRT_2_OVER_PI=_float(opdefs.SQRT_2_OVER_PI))
        opmacros = env.get_template("ops.j2").module
        t = graph.tensors

        unpacks = [_unpack(name, t[name]) for name in graph.inputs if t[name].layout is not None]
        groups = []
        for g in fuse(graph):
            out = t[g.output]
            dims = [f"d{i}" for i in range(len(out.shape))]
            ty = MLIR_TYPES[out.dtype]
            item = {"out": g.output, "type": _type(out), "elem": ty, "dims": ", ".join(dims),
                    "comment": " ; ".join(f"{n.output} = {n.op}({', '.join(n.inputs)})" for n in g.nodes)}
            ins = []            # the epilogue generic's operands: (value, type, map, block arg)

            def operand(value, tensor_type, elem, index, arg):
                ins.append({"value": value, "type": tensor_type, "arg": f"{arg}: {elem}",
                            "map": f"affine_map<({item['dims']}) -> ({', '.join(index)})>"})
                return arg

            acc = None
            if g.matmul is not None:
                a, b = g.matmul.inputs
                acc_dtype = g.matmul.attr["acc_dtype"]
                item.update(template="gemm.j2", a=f"%{a}", a_type=_type(t[a]), b=f"%{b}", b_type=_type(t[b]),
                            acc=f"%{g.output}_acc", acc_type=_ttype(out.shape, acc_dtype),
                            acc_elem=MLIR_TYPES[acc_dtype],
                            b_map="(d0, d1, d2) -> (d1, d2)" if g.matmul.attr["transpose_b"] else
                                  "(d0, d1, d2) -> (d2, d1)")

                def acc():
                    return operand(item["acc"], item["acc_type"], item["acc_elem"], dims, "%acc")
            else:
                item.update(template="elementwise.j2")
            loaded = {}

            def load(name):
                if name not in loaded:
                    x = t[name]
                    loaded[name] = operand(f"%{name}", _type(x), MLIR_TYPES[x.dtype],
                                           broadcast_index(x.shape, dims), f"%in_{name}")
                return loaded[name]

            body, count = [], [0]

            def call(op, call_args, attrs):
                res = f"%v{count[0]}"
                count[0] += 1
                text = str(getattr(opmacros, op)(res, *call_args, ty=ty, **attrs))
                body.extend(line.strip() for line in text.split("\n") if line.strip())
                return res

            result = fold(g.expr, acc, load, call)
            # a plain GEMM (no epilogue) stores its accumulator: no generic at all
            item["epilogue"] = None if not body and g.matmul is not None else {
                "ins": ins, "out_map": f"affine_map<({item['dims']}) -> ({item['dims']})>",
                "out_arg": f"%out: {ty}", "iterators": ", ".join(['"parallel"'] * len(dims)),
                "body": body, "result": result}
            groups.append(item)

        text = env.get_template("kernel.mlir.j2").render(
            source=source, variant=variant,
            graph_lines=[f"{n.output} = {n.op}({', '.join(n.inputs)}){_attrs_text(n)}" for n in graph.nodes],
            args=[f"%{n}_packed: {_ttype(t[n].memory_shape, t[n].dtype)}" if t[n].layout is not None
                  else f"%{n}: {_type(t[n])}" for n in graph.inputs],
            results=[_type(t[n]) for n in graph.outputs], returns=[f"%{n}" for n in graph.outputs],
            unpacks=unpacks, groups=groups)
        return {"kernel.mlir": text}, used_templates(env)

    # --- compile / assemble / run -------------------------------------------------------
    def compile(self, build_dir, dest):
        """MLIR -> IREE's executable-targets phase: dispatches formed and code-generated."""
        build_dir, dest = Path(build_dir), Path(dest)
        dumps = Path(tempfile.mkdtemp(dir=dest, prefix=".dispatches-"))
        try:
            _iree_compile(build_dir / "kernel.mlir", dest / "kernel.hal.mlir", "--compile-to=executable-targets",
                          f"--iree-hal-dump-executable-sources-to={dumps}")
            text = "".join(f"// ----- {p.name}\n{p.read_text()}\n" for p in sorted(dumps.glob("*.mlir")))
        finally:
            shutil.rmtree(dumps, ignore_errors=True)
        (dest / "executables.mlir").write_text(text)

    def assemble(self, build_dir, dest):
        """Serialize the host program and the executables into one .vmfb."""
        _iree_compile(Path(build_dir) / "kernel.hal.mlir", Path(dest) / self.artifact_name,
                      "--compile-from=executable-targets")

    def run(self, build_dir, graph, inputs: dict) -> dict:
        import numpy as np
        import torch
        import iree.runtime as rt

        ctx = rt.SystemContext(config=rt.Config(DRIVER))
        ctx.add_vm_module(rt.VmModule.copy_buffer(ctx.instance, (Path(build_dir) / self.artifact_name).read_bytes()))
        buffers = self.host_buffers(graph, inputs)
        results = ctx.modules.module["main"](*[buffers[n].numpy() for n in graph.inputs])
        if len(graph.outputs) == 1:
            results = (results,)
        return {n: torch.from_numpy(np.array(r.to_host())) for n, r in zip(graph.outputs, results)}


def _iree_compile(src: Path, out: Path, *flags):
    """Run iree-compile as a subprocess (the Python wrapper writes bytes to sys.stderr,
    which doit has replaced by a text capture); its diagnostics become the error."""
    from iree.compiler.tools.binaries import find_tool

    cmd = [find_tool("iree-compile"), str(src), *COMPILE_FLAGS, *flags, "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolchainError(f"iree-compile exited {proc.returncode}: {_first_error(proc.stderr)}",
                             path=str(src))


def dispatch_count(executables_text: str) -> int:
    """How many dispatches a compiled module launches: one export per dispatch function."""
    return executables_text.count("hal.executable.export")


def _ttype(shape, dtype) -> str:
    return f"tensor<{'x'.join(str(s) for s in shape)}x{MLIR_TYPES[dtype]}>"


def _type(x) -> str:
    return _ttype(x.shape, x.dtype)


def _unpack(name, x) -> dict:
    """How a laid-out input becomes its logical tensor: the flat buffer is expanded into
    one dimension per tile level (ordered by stride: a mixed-radix number), transposed so
    each tensor dimension's levels are adjacent (outer to inner), and collapsed back.
    This is the packing view of layouts.Layout; IREE cannot tile the equivalent
    floordiv/mod indexing map."""
    levels = [(stride, bound, d, j) for d, lv in enumerate(x.layout.dims)
              for j, (stride, bound) in enumerate(lv) if bound > 1]
    for d in range(x.layout.rank):
        if not any(lv[2] == d for lv in levels):
            levels.append((0, 1, d, 0))            # a dimension of size 1 still needs a place
    by_stride = sorted(levels, key=lambda lv: -lv[0])
    radix = 1
    for stride, bound, _, _ in reversed(by_stride):
        if bound > 1 and stride != radix:
            raise ToolchainError(f"mlir-cpu renders layouts whose tile levels are a mixed-radix split of the "
                                 f"buffer; the layout of '{name}' ({x.layout.form}) is not",
                                 valid="row_major, col_major, {tiled: [r, s]}, or dims with strides that are "
                                       "products of inner bounds")
        radix *= bound
    logical = sorted(levels, key=lambda lv: (lv[2], lv[1] == 1 and lv[0] == 0, lv[3]))
    expanded = [lv[1] for lv in by_stride]
    groups, k = [], 0
    for d in range(x.layout.rank):
        n = sum(1 for lv in logical if lv[2] == d)
        groups.append(list(range(k, k + n)))
        k += n
    return {"name": name, "packed": _ttype(x.memory_shape, x.dtype), "type": _type(x),
            "expanded": _ttype(expanded, x.dtype), "expanded_shape": expanded,
            "transposed": _ttype([lv[1] for lv in logical], x.dtype),
            "permutation": [by_stride.index(lv) for lv in logical], "groups": groups,
            "form": x.layout.form}


def _float(x: float) -> str:
    return repr(float(x))


def _attrs_text(node) -> str:
    shown = [f"{k}={v}" for k, v in node.attrs if not (k == "acc_dtype" and v == "float32")]
    return f" [{', '.join(shown)}]" if shown else ""


def _first_error(stderr: str) -> str:
    """iree-compile's first diagnostic, without the megabyte of target attributes after it."""
    lines = [ln if len(ln) <= 300 else ln[:300] + " ..." for ln in stderr.strip().splitlines()]
    start = next((i for i, ln in enumerate(lines) if "error:" in ln), 0)
    return "\n".join(lines[start:start + 12])
