"""What a task carries to a worker: plain JSON data, checked again where it lands.

A worker receives one JSON string per task and runs one of fusebuild's own stage functions
on it (worker.py); nothing in it is code. The spec-derived parts are written here and read
back (with every check) on the worker:

  graph     tensors (name, shape, dtype, layout), nodes (op, inputs, output, attrs), in order
  job       a RenderJob: graph, the target's resolved schedule hints, spec and variant names
  variant   spec and variant names, params, graph, targets, seed, tolerance, schedule, mode

Reading back checks what the spec loader checked, against the same tables: names are plain
identifiers, ops are in the op table with their declared attributes and types, dtypes are
in the dtype table, shapes are positive integers, layouts cover their tensors, hints are
declared by the target and in range. Whatever reaches a worker's generated source is
therefore again a checked identifier or number; anything else is refused (`BadPayload`)
before a tool runs. Paths of the coordinator never travel (files go by digest).
"""
from __future__ import annotations

import json
import re
from pathlib import PurePosixPath

from ..backends.base import RenderJob
from ..errors import FusebuildError
from ..ir.dtypes import DTYPES
from ..ir.graph import Graph, Node, Tensor
from ..ir.layouts import Layout
from ..ir.ops import OPS
from ..spec.fields import MODES, is_name, is_word
from ..spec.load import Variant

VARIANT_NAME = re.compile(r"[A-Za-z0-9_]{1,200}")
LAYOUT_FORM = re.compile(r"row_major|col_major|custom|tiled\[\d+,\d+\]")


class BadPayload(FusebuildError):
    """A task payload a worker refuses (it is not what a coordinator's spec loader makes)."""


def dumps(obj) -> str:
    return json.dumps(obj)          # key order kept: hints and tensors render in the order given


def loads(text: str) -> dict:
    if not isinstance(text, str):
        raise BadPayload(f"a task payload is a JSON string, got {type(text).__name__}")
    obj = json.loads(text)
    if not isinstance(obj, dict):
        raise BadPayload("a task payload is a JSON object")
    return obj


# --- graph ------------------------------------------------------------------------------

def graph_data(g: Graph) -> dict:
    return {"tensors": [[t.name, list(t.shape), t.dtype,
                         None if t.layout is None else {"dims": t.layout.canonical(), "form": t.layout.form},
                         list(t.symbols)]
                        for t in g.tensors.values()],
            "ranges": [list(r) for r in g.ranges],
            "inputs": list(g.inputs), "outputs": list(g.outputs),
            "nodes": [{"op": n.op, "inputs": list(n.inputs), "output": n.output,
                       "attrs": [list(a) for a in n.attrs], "line": n.line} for n in g.nodes]}


def graph_from(data) -> Graph:
    check(isinstance(data, dict) and set(data) == {"tensors", "ranges", "inputs", "outputs", "nodes"}, "graph", data)
    ranges = _ranges(data["ranges"])
    tensors = {}
    for item in data["tensors"]:
        check(isinstance(item, list) and len(item) == 5, "tensor", item)
        name, shape, dtype, layout, symbols = item
        _name(name, "tensor name")
        check(isinstance(shape, list) and shape and all(_posint(x) for x in shape), f"shape of {name}", shape)
        check(dtype in DTYPES, f"dtype of {name}", dtype)
        check(isinstance(symbols, list) and len(symbols) == len(shape)
              and all(s is None or (s in ranges and shape[i] == ranges[s][1]) for i, s in enumerate(symbols)),
              f"dynamic dimensions of {name}", symbols)
        tensors[name] = Tensor(name, tuple(shape), dtype, _layout(layout, tuple(shape), name), tuple(symbols))
    inputs = tuple(_known(n, tensors, "graph input") for n in data["inputs"])
    outputs = tuple(_known(n, tensors, "graph output") for n in data["outputs"])
    nodes = tuple(_node(n, tensors) for n in data["nodes"])
    return Graph(tensors, inputs, nodes, outputs, tuple((p, lo, hi) for p, (lo, hi) in sorted(ranges.items())))


def _ranges(data) -> dict:
    """{param: (lo, hi)} of a graph's dynamic parameters: names and 1 <= lo <= hi."""
    check(isinstance(data, list) and all(isinstance(r, list) and len(r) == 3 for r in data), "ranges", data)
    out = {}
    for p, lo, hi in data:
        _name(p, "dynamic parameter")
        check(_posint(lo) and _posint(hi) and lo <= hi, f"range of {p}", [lo, hi])
        out[p] = (lo, hi)
    return out


def _layout(data, shape, name):
    if data is None:
        return None
    check(isinstance(data, dict) and set(data) == {"dims", "form"}, f"layout of {name}", data)
    check(isinstance(data["form"], str) and LAYOUT_FORM.fullmatch(data["form"]), f"layout form of {name}",
           data["form"])
    dims = data["dims"]
    check(isinstance(dims, list) and all(isinstance(levels, list) and levels for levels in dims),
           f"layout of {name}", dims)
    pairs = tuple(tuple(tuple(p) for p in levels) for levels in dims)
    check(all(len(p) == 2 and _int(p[0]) and p[0] >= 0 and _posint(p[1]) for levels in pairs for p in levels),
           f"layout of {name}", dims)
    layout = Layout(pairs, data["form"])
    check(layout.shape == shape, f"layout of {name} (it must cover {list(shape)})", dims)
    return layout


def _node(data, tensors) -> Node:
    check(isinstance(data, dict) and set(data) == {"op", "inputs", "output", "attrs", "line"}, "node", data)
    op = OPS.get(data["op"]) if isinstance(data["op"], str) else None
    check(op is not None, "op", data["op"])
    ins = tuple(_known(n, tensors, f"input of {op.name}") for n in data["inputs"])
    check(len(ins) == op.arity, f"inputs of {op.name}", data["inputs"])
    attrs = []
    for pair in data["attrs"]:
        check(isinstance(pair, list) and len(pair) == 2 and pair[0] in op.attrs, f"attribute of {op.name}", pair)
        key, value = pair
        spec = op.attrs[key]
        ok = isinstance(value, spec.type) and (spec.type is bool or not isinstance(value, bool))
        check(ok and (not spec.choices or value in spec.choices), f"{op.name}.{key}", value)
        attrs.append((key, value))
    check(_int(data["line"]), "node line", data["line"])
    return Node(op.name, ins, _known(data["output"], tensors, f"output of {op.name}"), tuple(attrs), data["line"])


# --- render job and variant -----------------------------------------------------------------

def job_data(job: RenderJob) -> dict:
    return {"graph": graph_data(job.graph), "hints": dict(job.hints), "spec": job.spec, "variant": job.variant}


def job_from(data, info) -> RenderJob:
    check(isinstance(data, dict) and set(data) == {"graph", "hints", "spec", "variant"}, "render job", data)
    _name(data["spec"], "spec name")
    check(isinstance(data["variant"], str) and VARIANT_NAME.fullmatch(data["variant"]), "variant name",
          data["variant"])
    return RenderJob(graph_from(data["graph"]), hints_from(info, data["hints"]), data["spec"], data["variant"])



def variant_data(v: Variant) -> dict:
    return {"spec": v.spec, "name": v.name, "params": dict(v.params), "graph": graph_data(v.graph),
            "targets": list(v.targets), "seed": v.seed,
            "tolerance": {d: dict(t) for d, t in v.tolerance.items()},
            "schedule": {t: dict(h) for t, h in v.schedule.items()}, "mode": v.mode,
            "dynamic": {p: list(r) for p, r in v.dynamic.items()}, "samples": [dict(x) for x in v.samples],
            "serves": {p: list(r) for p, r in v.serves.items()}}


def variant_from(data, targets: dict) -> Variant:
    keys = {"spec", "name", "params", "graph", "targets", "seed", "tolerance", "schedule", "mode", "dynamic",
            "samples", "serves"}
    check(isinstance(data, dict) and set(data) == keys, "variant", sorted(data) if isinstance(data, dict) else data)
    _name(data["spec"], "spec name")
    check(isinstance(data["name"], str) and VARIANT_NAME.fullmatch(data["name"]), "variant name", data["name"])
    params = data["params"]
    dynamic = _ranges([[p, *r] for p, r in data["dynamic"].items()]) if isinstance(data["dynamic"], dict) else None
    serves = _ranges([[p, *r] for p, r in data["serves"].items()]) if isinstance(data["serves"], dict) else None
    check(dynamic is not None and serves is not None, "dynamic sizes", [data["dynamic"], data["serves"]])
    check(isinstance(params, dict) and all(is_name(k) and (_posint(v) or is_word(v) or k in dynamic)
                                           for k, v in params.items()), "params", params)
    params = {k: tuple(dynamic[k]) if k in dynamic else v for k, v in params.items()}   # a range, as loaded
    samples = data["samples"]
    check(isinstance(samples, list) and all(isinstance(x, dict) and all(k in dynamic and _posint(n)
                                                                         for k, n in x.items()) for x in samples),
          "samples", samples)
    samples = [dict(x) for x in samples]
    check(isinstance(data["targets"], list) and all(t in targets for t in data["targets"]), "targets",
           data["targets"])
    check(_int(data["seed"]), "seed", data["seed"])
    tol = data["tolerance"]
    check(isinstance(tol, dict) and all(d in DTYPES and isinstance(t, dict) and set(t) <= {"atol", "rtol"}
                                         and all(_number(x) for x in t.values()) for d, t in tol.items()),
           "tolerance", tol)
    schedule = data["schedule"]
    check(isinstance(schedule, dict) and all(t in targets for t in schedule), "schedule", schedule)
    checked = {t: hints_from(targets[t], h) for t, h in schedule.items()}
    check(data["mode"] in MODES, "mode", data["mode"])
    return Variant(data["spec"], data["name"], params, graph_from(data["graph"]), tuple(data["targets"]),
                   data["seed"], tol, checked, data["mode"], "", dynamic, tuple(samples), serves)


def hints_from(info, data) -> dict:
    """Schedule hints for target `info`: each declared by it and allowed."""
    check(isinstance(data, dict), f"{info.name} hints", data)
    for name, value in data.items():
        check(name in info.hints, f"{info.name} hint", name)
        problem = info.hints[name].problem(value)
        if problem:
            raise BadPayload(f"refused task payload: {problem}", valid=info.hints[name].valid())
    return dict(data)


# --- helpers --------------------------------------------------------------------------------

def check(ok, what, value):
    """Refuse the payload unless `ok`, naming `what` and (the start of) the value."""
    if not ok:
        shown = json.dumps(value, default=str)
        raise BadPayload(f"refused task payload: bad {what}: {shown[:200]}",
                         valid="what fusebuild's spec loader produces (names, table entries, numbers)")


def _name(value, what):
    check(is_name(value), what, value)


def _known(name, tensors, what):
    check(isinstance(name, str) and name in tensors, what, name)
    return name


def relative_name(name) -> str:
    """A file name from a payload: a plain relative path, never absolute, never `..`."""
    path = PurePosixPath(name) if isinstance(name, str) else None
    check(path is not None and name and not path.is_absolute() and ".." not in path.parts, "file name", name)
    return name


def _int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _posint(x) -> bool:
    return _int(x) and x > 0


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)
