"""tir-cpu backend: render TVMScript, schedule it, compile with LLVM, link, run.

Files in the build folder:
  kernel.py     rendered TVMScript (unscheduled, readable), from templates/tir/
  plan.json     what the scheduler needs: GEMM groups (block names, M/N/K), hints
  scheduled.py  the scheduled TIR, printed back (readable; what was compiled)
  kernel.o      LLVM object (compile)
  kernel.so     shared library loadable by tvm.runtime (assemble)
"""
from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path

from ... import ops as opdefs
from ...graph import fold, fuse, broadcast_index
from ...render import make_env, used_templates
from ...toolchains import cpu_key
from .. import Base


class Backend(Base):
    source_files = ("kernel.py", "plan.json")
    compiled_files = ("kernel.o", "scheduled.py")
    artifact_name = "kernel.so"
    template_folder = "tir"

    def toolchain(self) -> dict:
        try:
            tvm = metadata.version("apache-tvm")
        except metadata.PackageNotFoundError:
            return {"available": False, "versions": {}, "reason": "apache-tvm is not installed"}
        return {"available": True, "versions": {"apache-tvm": tvm, "llvm-host": cpu_key()}, "reason": ""}

    # --- render (pure text) -----------------------------------------------------------
    def render(self, graph, hints: dict, source: str = "", variant: str = "") -> dict:
        env = make_env(self.template_folder, SQRT_HALF=repr(opdefs.SQRT_HALF),
                       SQRT_2_OVER_PI=repr(opdefs.SQRT_2_OVER_PI))
        opmacros = env.get_template("ops.j2").module
        groups = fuse(graph)
        t = graph.tensors
        args = [t[n] for n in graph.inputs] + [t[n] for n in graph.outputs]
        allocs = [t[g.output] for g in groups if g.output not in graph.outputs]

        def decl(x):
            return {"name": x.name, "shape": _tuple(x.memory_shape), "dtype": x.dtype}

        # An input with a layout is first copied to a row-major scratch buffer by its own
        # elementwise block: the GEMM schedule packs B itself and needs an einsum-shaped
        # matmul block (flat index arithmetic inside it is not one).
        unpacked = {n: _fresh(f"{n}_rm", t) for n in graph.inputs if t[n].layout is not None}

        def access(name, idx, raw=False):
            x = t[name]
            if name in unpacked and not raw:
                return f"{unpacked[name]}[{', '.join(idx)}]"
            if x.layout is None:
                return f"{name}[{', '.join(idx)}]"
            terms = [_term(i, div, bound, stride) for d, i in enumerate(idx)
                     for div, bound, stride in x.layout.offset_terms(d)]
            return f"{name}[{' + '.join(terms)}]"

        ctx_groups, gemms, ew_blocks = [], [], []
        for name, logical in unpacked.items():
            x = t[name]
            allocs.append(type(x)(logical, x.shape, x.dtype))
            vars_ = [f"v{d}" for d in range(len(x.shape))]
            ctx_groups.append(_elementwise(logical, x.shape, f"{logical}[{', '.join(vars_)}]",
                                           access(name, vars_, raw=True),
                                           f"{name}: {x.layout.form} layout -> row-major copy"))
            ew_blocks.append(f"{logical}_ew")
        for g in groups:
            out = t[g.output]
            if g.matmul is not None:
                mm = g.matmul
                a, b = mm.inputs
                m, n = t[mm.output].shape
                k = t[a].shape[1]
                acc = f"{g.output}_acc"
                dt = mm.attr["acc_dtype"]
                out_vars = ["vi", "vj"]
            else:
                dt, acc, out_vars = out.dtype, None, [f"v{d}" for d in range(len(out.shape))]

            def load(name, out_vars=out_vars):
                return access(name, broadcast_index(t[name].shape, out_vars))

            def call(op, args, attrs, dt=dt):
                return str(getattr(opmacros, op)(*args, dt=dt, **attrs))

            store = fold(g.expr, lambda: f"{acc}[vi, vj]", load, call)
            if out.dtype != dt:
                store = f"T.Cast(\"{out.dtype}\", {store})"
            comment = " ; ".join(f"{nd.output} = {nd.op}({', '.join(nd.inputs)})" for nd in g.nodes)
            store_to = access(g.output, out_vars)
            if g.matmul is not None:
                tb = mm.attr["transpose_b"]
                ctx_groups.append({"template": "gemm.j2", "out": g.output, "store_to": store_to, "store": store,
                                   "comment": comment, "m": m, "n": n, "k": k, "acc": acc, "acc_dtype": dt,
                                   "a": access(a, ["vi", "vk"]),
                                   "b": access(b, ["vj", "vk"] if tb else ["vk", "vj"])})
                allocs.append(type(out)(acc, (m, n), dt))
                gemms.append({"matmul_block": f"{g.output}_matmul", "epilogue_block": f"{g.output}_epilogue",
                              "m": m, "n": n, "k": k, "transpose_b": tb})
            else:
                ctx_groups.append(_elementwise(g.output, out.shape, store_to, store, comment))
                ew_blocks.append(f"{g.output}_ew")

        text = env.get_template("kernel.py.j2").render(
            source=source, variant=variant,
            graph_lines=[f"{n.output} = {n.op}({', '.join(n.inputs)}){_attrs_text(n)}" for n in graph.nodes],
            args=[decl(x) for x in args], allocs=[decl(x) for x in allocs], groups=ctx_groups)
        plan = {"gemms": gemms, "elementwise_blocks": ew_blocks, "hints": hints,
                "args": [x.name for x in args]}
        files = {"kernel.py": text, "plan.json": json.dumps(plan, indent=1) + "\n"}
        return files, used_templates(env)

    # --- compile / assemble / run: each writes its files into `dest` --------------------
    def compile(self, build_dir, dest):
        import tvm
        from .schedule import GemmSchedule, host_target, schedule

        build_dir, dest = Path(build_dir), Path(dest)
        func = tvm.script.from_source((build_dir / "kernel.py").read_text())
        plan = json.loads((build_dir / "plan.json").read_text())
        hints = dict(plan["hints"])
        threads = hints.pop("threads", None) or os.cpu_count() or 1
        gemms = [GemmSchedule(g["matmul_block"], g["epilogue_block"], g["m"], g["n"], g["k"],
                              g["transpose_b"], hints) for g in plan["gemms"]]
        mod = schedule(func, gemms, plan["elementwise_blocks"], threads)
        (dest / "scheduled.py").write_text(mod.script())
        tvm.compile(mod, target=host_target()).mod.write_to_file(str(dest / "kernel.o"))

    def assemble(self, build_dir, dest):
        from tvm.support import cc
        cc.create_shared(str(Path(dest) / self.artifact_name), [str(Path(build_dir) / "kernel.o")])

    def run(self, build_dir, graph, inputs: dict) -> dict:
        import tvm

        main = tvm.runtime.load_module(str(Path(build_dir) / self.artifact_name))["main"]
        buffers = self.host_buffers(graph, inputs)
        main(*[tvm.runtime.from_dlpack(b) for b in buffers.values()])
        return self.host_outputs(graph, buffers)


def _elementwise(out: str, shape, store_to: str, store: str, comment: str) -> dict:
    loops = [f"i{d}" for d in range(len(shape))]
    return {"template": "elementwise.j2", "out": out, "store_to": store_to, "store": store, "comment": comment,
            "loops": loops, "extents": [str(s) for s in shape],
            "axes": list(zip([f"v{d}" for d in range(len(shape))], loops, shape))}


def _fresh(name: str, taken) -> str:
    while name in taken:
        name += "_"
    return name


def _tuple(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _term(var, div, bound, stride) -> str:
    if bound == 1:
        return "0"
    text = var if div == 1 else f"{var} // {div}"
    return f"({text} % {bound}) * {stride}"


def _attrs_text(node) -> str:
    shown = [f"{k}={v}" for k, v in node.attrs if not (k == "acc_dtype" and v == "float32")]
    return f" [{', '.join(shown)}]" if shown else ""
