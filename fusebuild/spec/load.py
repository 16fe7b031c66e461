"""Specs: load a YAML file, check it, expand its parameters into variants.

Loading is pure: YAML in, frozen `Spec`/`Variant` data out, nothing rendered or run.
Every check that can be done without a toolchain is done here (fields, names, ops,
attributes, shapes, dtypes, layouts, graph order and cycles, and each target's declared
facts: dtypes, schedule hints, DMA limits, and the limits each target declares through
its `TargetInfo.load_check` hook), so a bad spec fails before any task runs, with
`file:line: field: message (valid: ...)`.

A dynamic parameter (`M: {dynamic: [1, 4096]}`, spec/dynamic.py) expands into one variant
for the targets that compile symbolic shapes and one static variant per bucket for the
others (see `_expansions`).

Loading is bounded work whatever the file holds (spec/limits.py: file size, YAML depth and
alias expansion, variants, expression size, tensor elements, graph size, fused chains),
and any exception while loading one spec becomes that spec's SpecError at the last place
the loader was looking (`_Ctx.at`), never a traceback. Spec values appear in messages only
through `errors.quote` (bounded, control characters escaped).

Target facts come from the table the caller passes (`targets`: name -> TargetInfo);
the default is the backend registry, looked up when a spec is loaded, not imported here.
"""
from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FusebuildError, LayoutError, SpecError, did_you_mean, one_of
from ..ir import layouts, symbols
from ..ir.dtypes import DTYPES
from ..ir.graph import Call, Graph, Node, Tensor, fuse
from ..ir.ops import OPS, ShapeError, broadcast, matmul_shape
from . import dynamic as D
from . import limits
from .exprs import ExprError, eval_int, names
from .fields import DEFAULT_TARGETS, INPUT_FIELDS, MAX_NAME, MODES, NODE_FIELDS, SPEC_FIELDS, is_name, is_word
from .yamlio import LDict, LList, load_yaml, quote


@dataclass(frozen=True)
class Variant:
    spec: str                 # spec name
    name: str                 # e.g. M128_N1024_K1024_float32
    params: dict
    graph: Graph
    targets: tuple
    seed: int
    tolerance: dict           # dtype -> {"atol", "rtol"} overrides
    schedule: dict            # target -> hints
    mode: str
    path: str
    dynamic: dict = field(default_factory=dict)   # param -> (lo, hi): one artifact takes it at run time
    samples: tuple = ()                           # ({param: size}, ...) validation runs a dynamic artifact at
    serves: dict = field(default_factory=dict)    # a bucket variant: param -> (lo, hi) of the sizes it serves


@dataclass(frozen=True)
class Spec:
    name: str
    path: str
    description: str
    variants: tuple = field(default=())


def load_spec(path, targets=None) -> Spec:
    """Read, check and expand one spec file. Raises SpecError (and nothing else)."""
    path = Path(path)
    if not path.name.isprintable():
        raise SpecError(f"the spec's file name {quote(path.name)} holds control characters", path=str(path),
                        line=1, field="file name", valid="a file name of printable characters")
    if path.exists() and not path.is_file():          # a FIFO or device would block or never end
        raise SpecError("not a regular file", path=str(path), line=1, valid="a YAML file")
    try:
        with open(path, "rb") as f:
            raw = f.read(limits.MAX_FILE_BYTES + 1)
    except OSError as err:
        raise SpecError(f"cannot read spec: {err.strerror or err}", path=str(path)) from None
    if len(raw) > limits.MAX_FILE_BYTES:
        raise SpecError(f"the file is larger than {limits.MAX_FILE_BYTES} bytes", path=str(path), line=1,
                        valid=f"a spec of at most {limits.MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise SpecError(f"not UTF-8: byte {raw[err.start]:#04x} at byte offset {err.start}", path=str(path),
                        line=line, valid="a UTF-8 text file") from None
    return parse_spec(text, str(path), targets)


def spec_files(paths) -> list:
    """The spec files `paths` name, in order: a file as it is, a folder as a build reads it
    (its *.yaml, then its *.yml, each sorted); a file named twice once."""
    out, seen = [], set()
    for p in map(Path, paths):
        for f in sorted(p.glob("*.yaml")) + sorted(p.glob("*.yml")) if p.is_dir() else [p]:
            key = f.resolve() if f.exists() else f
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out


def name_clashes(specs) -> dict:
    """{spec path: SpecError} for specs in one folder that share a name (a build of that
    folder refuses them all, plan/project.py: the same message)."""
    by_name = {}
    for s in specs:
        by_name.setdefault((Path(s.path).resolve().parent, s.name), []).append(s)
    out = {}
    for (_, name), same in by_name.items():
        for s in same if len(same) > 1 else ():
            others = ", ".join(o.path for o in same if o is not s)
            out[s.path] = SpecError(f"spec name '{name}' is also used by {others}", path=s.path, line=1, field="name",
                                    valid="unique spec names")
    return out


def default_targets() -> dict:
    from ..backends import TARGETS
    return TARGETS


def parse_spec(text: str, path: str, targets=None) -> Spec:
    """Check and expand spec text. Raises SpecError (and nothing else)."""
    ctx = _Ctx(path, targets if targets is not None else default_targets())
    try:
        return _parse(text, ctx)
    except SpecError as err:
        err.path = err.path or path
        raise
    except Exception as err:       # noqa: BLE001 - a spec is untrusted input: one error, never a traceback
        raise SpecError(f"cannot be loaded ({type(err).__name__}: {quote(str(err))})", path=path,
                        line=ctx.line or 1, field=ctx.field,
                        valid="a spec within the documented limits (spec/limits.py)") from None


def _parse(text: str, ctx) -> Spec:
    if "\0" in text:
        ctx.fail("a NUL byte", text.count("\n", 0, text.index("\0")) + 1, None, valid="a text file")
    doc = load_yaml(text, ctx.path)
    if not isinstance(doc, LDict):
        ctx.fail("the spec must be a mapping of fields", getattr(doc, "line", 1), None,
                 valid="fields " + one_of(SPEC_FIELDS))
    for key in doc:
        if key not in SPEC_FIELDS:
            ctx.fail(f"unknown field {quote(key)}{did_you_mean(key, SPEC_FIELDS)}", doc.line_of(key), _key(key),
                     valid=one_of(SPEC_FIELDS))
    for key, (required, typ, what) in SPEC_FIELDS.items():
        if required and key not in doc:
            ctx.fail(f"missing required field '{key}' ({what})", doc.line, key, valid="fields " + one_of(SPEC_FIELDS))
        if key in doc and not _isinstance(doc[key], typ):
            ctx.fail(f"expected {_tname(typ)}, got {_got(doc[key])}", doc.line_of(key), key, valid=what)
    name = doc["name"]
    ctx.name(name, doc.line_of("name"), "name")
    params = _params(doc.get("params", LDict()), ctx)
    static = [k for k in params if k not in ctx.dynamic]
    count = math.prod(len(params[k]) for k in static) * (
        1 + math.prod(len(d.buckets) for d in ctx.dynamic.values()) if ctx.dynamic else 1)
    if count > limits.MAX_VARIANTS:
        ctx.fail(f"the parameter lists expand to {count} variants", doc.line_of("params"), "params",
                 valid=f"at most {limits.MAX_VARIANTS} variants per spec")
    _check_scalars(doc, ctx)
    variants, seen = [], set()
    for combo in itertools.product(*(params[k] for k in static)):
        made = []
        for values, kind in _expansions(list(params), dict(zip(static, combo)), ctx.dynamic):
            vname = variant_name(values)
            ctx.at(doc.line_of("params"), "params")
            if vname in seen:
                ctx.fail(f"two variants are both named {quote(vname)}", doc.line_of("params"), "params",
                         valid="distinct parameter values")
            if len(vname.encode()) > limits.MAX_VARIANT_NAME_BYTES:
                ctx.fail(f"the variant name {quote(vname)} is {len(vname.encode())} bytes, too long for a folder "
                         "name", doc.line_of("params"), "params",
                         valid=f"parameters whose variant name stays within {limits.MAX_VARIANT_NAME_BYTES} bytes")
            seen.add(vname)
            made += [v for v in [_variant(doc, name, vname, values, ctx, kind)] if v is not None]
        if not made:
            ctx.fail(f"no target matches the variant {show_params(dict(zip(static, combo)))}", doc.line_of("targets"),
                     "targets", valid="a target filter that matches every variant")
        variants += made
    return Spec(name, ctx.path, doc.get("description", ""), tuple(variants))


def variant_name(values: dict) -> str:
    """M=128, N=1024, dtype=float32 -> M128_N1024_float32 (strings stand alone); a dynamic
    parameter's range (lo, hi) shows as M1to4096."""
    parts = [str(v) if isinstance(v, str) else f"{k}{v[0]}to{v[1]}" if isinstance(v, tuple) else f"{k}{v}"
             for k, v in values.items()]
    return "_".join(parts) or "default"


def _expansions(order: list, base: dict, dyn: dict):
    """(values, kind) of the variants one combination of static values expands into:
    kind None without dynamic parameters; else "dynamic" (each dynamic parameter as its
    range, for targets with TargetInfo.dynamic) and one "bucket" per combination of
    bucket sizes (for the other targets)."""
    if not dyn:
        yield base, None
        return
    yield {k: base[k] if k in base else (dyn[k].lo, dyn[k].hi) for k in order}, "dynamic"
    for sizes in itertools.product(*(dyn[k].buckets for k in dyn)):
        chosen = dict(zip(dyn, sizes))
        yield {k: base[k] if k in base else chosen[k] for k in order}, "bucket"


# --- helpers ------------------------------------------------------------------------------

class _Ctx:
    def __init__(self, path, targets):
        self.path, self.params, self.targets = path, {}, targets
        self.line, self.field = 1, None          # where the loader is looking (for unexpected errors)
        self.dynamic = {}                  # param -> spec.dynamic.Dynamic
        self.kind = None                   # the variant being built: None | "dynamic" | "bucket"
        self.hidden = {}                   # internal tensor name (an epilogue's intermediate) -> how messages say it

    def at(self, line, field):
        self.line, self.field = line or self.line, field

    def show(self, name) -> str:
        """A tensor name as messages say it: the user's name, or what an internal one stands for."""
        return self.hidden.get(name, name)

    def unhide(self, text):
        """Text from elsewhere (a target's limit check) with internal tensor names said as show() says them."""
        if not text or not self.hidden:
            return text
        pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in sorted(self.hidden, key=len, reverse=True))
                             + r")\b")
        return pattern.sub(lambda m: self.hidden[m.group(1)], str(text))

    def fail(self, message, line, field, valid=None, cls=SpecError):
        raise cls(message, path=self.path, line=line, field=field, valid=valid)

    def name(self, value, line, field):
        self.at(line, field)
        if isinstance(value, str) and len(value) > MAX_NAME:
            self.fail(f"{quote(value)} is longer than {MAX_NAME} characters", line, field,
                      valid=f"a plain name of at most {MAX_NAME} characters")
        if not is_name(value):
            self.fail(f"{quote(value)} is not a plain name (it could escape out/ or break generated code)",
                      line, field, valid="letters, digits and _ , not starting with a digit")


def _isinstance(value, typ):
    if typ is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, typ)


def _tname(typ):
    if isinstance(typ, tuple):
        return " or ".join(_tname(t) for t in typ)
    names = {dict: "a mapping", list: "a list", str: "a string", int: "an integer", bool: "true/false",
             float: "a number"}
    return names.get(typ, "a value")


def _got(value) -> str:
    """What a spec value is, in YAML's words, then the value: `a list [1, 2]`, `null`."""
    if value is None or isinstance(value, bool):
        return quote(value)
    kind = next((_tname(t) for t in (bool, int, float, str, list, dict) if isinstance(value, t)), "a value")
    return f"{kind} {quote(value)}"


def show_params(params: dict) -> str:
    """A variant's parameters for messages: `M=1..64, N=256, dtype=float32` (a dynamic
    parameter as its range); `default` for a spec without parameters."""
    return ", ".join(f"{k}={v[0]}..{v[1]}" if isinstance(v, tuple) else f"{k}={v}" for k, v in params.items()) \
        or "default"


def _params(raw: LDict, ctx) -> dict:
    out = {}
    for key, value in raw.items():
        line = raw.line_of(key)
        ctx.name(key, line, "params")
        if D.is_declaration(value):
            ctx.dynamic[key] = D.parse(key, value, line, lambda m, ln, f, v: ctx.fail(m, ln, f, valid=v))
            out[key] = None
            continue
        values = list(value) if isinstance(value, list) else [value]
        if not values:
            ctx.fail("empty parameter list: it would expand to no variants", line, f"params.{key}",
                     valid="a value or a non-empty list of values")
        for v in values:
            ok = (_isinstance(v, int) and v > 0) or is_word(v)
            if not ok:
                ctx.fail(f"parameter value {quote(v)} is not a positive integer or a plain word", line, f"params.{key}",
                         valid="positive integers, or words of letters/digits/_ such as float32")
        out[key] = values
    return out


def _subst(value, params, ctx, line, field):
    """`$name` -> the parameter's value."""
    if isinstance(value, str) and value.startswith("$"):
        key = value[1:]
        if key in ctx.dynamic:
            ctx.fail(f"dynamic parameter '{key}' can only be a whole dimension of a shape, not ${key}", line, field,
                     valid="static parameters here; M as a shape entry: shape: [M, K]")
        if key not in params:
            ctx.fail(f"undefined parameter {quote(key)}{did_you_mean(key, params)}", line, field,
                     valid="parameters " + one_of(params) if params else "define it under params:")
        return params[key]
    return value


def _subst_deep(value, params, ctx, line, field):
    """`$name` anywhere inside lists/mappings (layouts such as {tiled: [$r, 8]})."""
    if isinstance(value, list):
        return [_subst_deep(v, params, ctx, line, field) for v in value]
    if isinstance(value, dict):
        return {k: _subst_deep(v, params, ctx, line, field) for k, v in value.items()}
    return _subst(value, params, ctx, line, field)


def _dtype(value, params, ctx, line, field):
    dtype = _subst(value, params, ctx, line, field)
    if not isinstance(dtype, str) or dtype not in DTYPES:
        ctx.fail(f"unknown dtype {quote(dtype)}{did_you_mean(dtype, DTYPES)}", line, field, valid=one_of(DTYPES))
    return dtype


def _shape(value, params, ctx, line, field) -> tuple:
    """(sizes, symbols): a dynamic parameter as a whole entry is a symbol (its size: hi)."""
    ctx.at(line, field)
    if not isinstance(value, list) or not value:
        ctx.fail(f"shape must be a non-empty list, got {quote(value)}", line, field, valid="e.g. [M, K]")
    if len(value) > limits.MAX_RANK:
        ctx.fail(f"{len(value)} dimensions", line, field, valid=f"at most {limits.MAX_RANK} dimensions")
    dims, syms = [], []
    for entry in value:
        if isinstance(entry, str) and len(entry) > limits.MAX_EXPR_CHARS:
            ctx.fail(f"a shape expression of {len(entry)} characters", line, field,
                     valid=f"expressions of at most {limits.MAX_EXPR_CHARS} characters")
        whole = entry.strip() if isinstance(entry, str) else None
        if whole in ctx.dynamic:
            bound = params[whole]           # (lo, hi) in the dynamic variant, a bucket size otherwise
            dims.append(bound[1] if isinstance(bound, tuple) else bound)
            syms.append(whole if isinstance(bound, tuple) else None)
            continue
        inside = sorted(names(entry) & set(ctx.dynamic))
        if inside:
            ctx.fail(f"dynamic parameter {quote(inside[0])} is used inside the expression {quote(entry)}", line, field,
                     valid=f"a dynamic parameter only as a whole dimension ([{inside[0]}, K]); "
                           "expressions of static parameters")
        try:
            n = eval_int(entry, params)
        except ExprError as err:
            ctx.fail(str(err), line, field, valid="integers and expressions of parameters " + one_of(params))
        if n <= 0:
            ctx.fail(f"dimension {quote(entry)} evaluates to {quote(n)}", line, field, valid="positive sizes")
        dims.append(n)
        syms.append(None)
    if math.prod(dims) > limits.MAX_ELEMENTS:
        ctx.fail(f"shape {quote(dims)} has {quote(math.prod(dims))} elements, beyond int32 index arithmetic", line,
                 field, valid=f"at most {limits.MAX_ELEMENTS} elements per tensor")
    return tuple(dims), tuple(syms)


def _variant(doc: LDict, spec_name: str, vname: str, params: dict, ctx, kind=None) -> Variant | None:
    """One variant, or None when no target of its `kind` (see _expansions) builds it."""
    ctx.params, ctx.kind = params, kind
    tensors: dict[str, Tensor] = {}
    inputs = doc["inputs"]
    if not inputs:
        ctx.fail("a spec needs at least one input", doc.line_of("inputs"), "inputs",
                 valid="e.g. x: {shape: [M, K], dtype: float32}")
    for tname, tdef in inputs.items():
        line, field = inputs.line_of(tname), f"inputs.{tname}"
        ctx.name(tname, line, "inputs")
        if not isinstance(tdef, LDict):
            ctx.fail(f"an input is a mapping {{shape, dtype[, layout]}}, got {_got(tdef)}", line, field,
                     valid="e.g. {shape: [M, K], dtype: float32}")
        for key in tdef:
            if key not in INPUT_FIELDS:
                ctx.fail(f"unknown field {quote(key)}{did_you_mean(key, INPUT_FIELDS)}", tdef.line_of(key),
                         field, valid=one_of(INPUT_FIELDS))
        for key in ("shape", "dtype"):
            if key not in tdef:
                ctx.fail(f"missing required field '{key}'", tdef.line, f"{field}.{key}", valid=INPUT_FIELDS[key])
        shape, syms = _shape(tdef["shape"], params, ctx, tdef.line_of("shape"), f"{field}.shape")
        dtype = _dtype(tdef["dtype"], params, ctx, tdef.line_of("dtype"), f"{field}.dtype")
        layout = None
        if tdef.get("layout") is not None and ctx.dynamic and _uses_dynamic(tdef["shape"], ctx):
            ctx.fail("an input with a dynamic dimension cannot have a layout (its tiling would depend on the size)",
                     tdef.line_of("layout"), f"{field}.layout", valid="row_major for this input")
        if tdef.get("layout") is not None:
            ctx.at(tdef.line_of("layout"), f"{field}.layout")
            try:
                raw = _subst_deep(tdef["layout"], params, ctx, tdef.line_of("layout"), f"{field}.layout")
                layout = layouts.parse_layout(raw, shape, tname)
            except LayoutError as err:
                ctx.fail(err.message, tdef.line_of("layout"), f"{field}.layout", valid=err.valid, cls=LayoutError)
            if layout.is_row_major():
                layout = None
        tensors[tname] = Tensor(tname, shape, dtype, layout, syms)
    _check_dynamic_used(doc, inputs, ctx)

    nodes = _nodes(doc["graph"], tensors, inputs, doc["outputs"], ctx)
    outputs = _outputs(doc, tensors, nodes, ctx)
    used = {s for t in tensors.values() for s in t.symbols if s is not None}
    ranges = tuple((p, ctx.dynamic[p].lo, ctx.dynamic[p].hi) for p in sorted(used))
    graph = Graph(tensors, tuple(inputs), tuple(nodes), tuple(outputs), ranges)
    _check_fused(graph, ctx)
    targets = _targets(doc, graph, ctx)
    if not targets:
        return None
    _check_target_layouts(inputs, tensors, targets, ctx)
    schedule = _schedule(doc, targets, ctx)
    _check_target_limits(doc, graph, targets, schedule, ctx)
    dyn = {p: ctx.dynamic[p] for p in graph.dynamic}
    return Variant(spec_name, vname, params, graph, targets, doc.get("seed", 0),
                   _tolerance(doc, ctx), schedule, _mode(doc, ctx), ctx.path,
                   dynamic=graph.dynamic, samples=_samples(dyn),
                   serves={p: ctx.dynamic[p].serves(params[p]) for p in ctx.dynamic} if kind == "bucket" else {})


def _uses_dynamic(shape, ctx) -> bool:
    return isinstance(shape, list) and any(isinstance(e, str) and e.strip() in ctx.dynamic for e in shape)


def _check_dynamic_used(doc, inputs, ctx):
    """A dynamic parameter no input shape uses would make artifacts that ignore it."""
    for p, dyn in ctx.dynamic.items():
        if not any(isinstance(t, LDict) and isinstance(t.get("shape"), list)
                   and p in [e.strip() for e in t["shape"] if isinstance(e, str)] for t in inputs.values()):
            ctx.fail(f"dynamic parameter '{p}' is not a dimension of any input", dyn.line, f"params.{p}",
                     valid="a dynamic parameter used as a whole dimension of an input shape, e.g. x: [M, K]")


def _samples(dyn: dict) -> tuple:
    """({param: size}, ...): every parameter's samples, taken side by side (the shorter
    lists repeat their last size), so each size of each parameter is validated."""
    if not dyn:
        return ()
    count = max(len(d.samples) for d in dyn.values())
    return tuple({p: d.samples[min(i, len(d.samples) - 1)] for p, d in dyn.items()} for i in range(count))


@dataclass(frozen=True)
class _Where:
    """Where the spec writes a node (for messages): an epilogue step is a node of its own."""
    field: str             # graph[0] or graph[0].epilogue[1]
    ins: tuple             # per input: the field naming it (graph[0].inputs), None for an epilogue's own value
    out: str | None        # the field naming its output (graph[0].output), None for an epilogue's intermediate


def _nodes(raw: LList, tensors: dict, inputs: LDict, outputs, ctx) -> list:
    """Parse nodes (expanding epilogues), check order/cycles, infer shapes and dtypes."""
    parsed = []                         # (Node, _Where) before shape inference
    ctx.hidden = {}
    taken = set(tensors) | _written_names(raw) | {o for o in outputs if isinstance(o, str)}
    for idx, entry in enumerate(raw):
        ctx.at(raw.line_of(idx), f"graph[{idx}]")
        parsed.extend(_node(entry, raw.line_of(idx), f"graph[{idx}]", ctx, taken))
        if len(parsed) > limits.MAX_GRAPH_NODES:
            ctx.fail(f"the graph has more than {limits.MAX_GRAPH_NODES} nodes (epilogue steps count as nodes)",
                     raw.line, "graph", valid=f"at most {limits.MAX_GRAPH_NODES} nodes")
    defined_by, where_of = {}, {}
    for node, where in parsed:
        # only names the spec writes can clash: internal ones avoid every name it writes
        if node.output in tensors:
            ctx.fail(f"duplicate name {quote(node.output)}: already defined as an input (line "
                     f"{inputs.line_of(node.output)})", node.line, where.out, valid="each tensor name defined once")
        if node.output in defined_by:
            first = where_of[node.output]
            ctx.fail(f"duplicate name {quote(node.output)}: already defined by {first.out} (line "
                     f"{defined_by[node.output].line})", node.line, where.out, valid="each tensor name defined once")
        defined_by[node.output], where_of[node.output] = node, where
    _check_order(parsed, tensors, defined_by, ctx)
    for node, where in parsed:
        ctx.at(node.line, where.field)
        tensors[node.output] = _infer(node, where, tensors, ctx)
    return [node for node, _ in parsed]


def _written_names(raw) -> set:
    """Every tensor name the graph writes (outputs, inputs, epilogue operands): internal
    names are chosen outside this set."""
    found = set()
    for entry in raw if isinstance(raw, list) else ():
        if not isinstance(entry, dict):
            continue
        ins = entry.get("inputs")
        steps = entry.get("epilogue")
        found.update(x for x in [entry.get("output"), *(ins if isinstance(ins, list) else ()),
                                 *(v for step in (steps if isinstance(steps, list) else ())
                                   if isinstance(step, dict) for v in step.values())] if isinstance(x, str))
    return found


def _internal(base: str, taken: set) -> str:
    """An internal tensor name: `base` (y_mm, y_e1: the names every spec has always had,
    so artifacts, cache keys and tuning records stay valid), or, where the spec itself
    writes that name, the first of base_1, base_2, ... that it does not."""
    name, i = base, 0
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    taken.add(name)
    return name


def _node(entry, line, field, ctx, taken) -> list:
    example = "e.g. {op: matmul, inputs: [x, w], output: y}"
    if not isinstance(entry, LDict):
        ctx.fail(f"a node is a mapping {{op, inputs, output, ...}}, got {_got(entry)}", line, field, valid=example)
    op_name = entry.get("op")
    if "op" in entry and (not isinstance(op_name, str) or op_name not in OPS):
        ctx.fail(f"unknown op {quote(op_name)}{did_you_mean(op_name, OPS)}", entry.line_of("op"), f"{field}.op",
                 valid=one_of(OPS))
    op = OPS.get(op_name) if "op" in entry else None
    if op is not None:
        valid_fields = (*NODE_FIELDS, *op.attrs, *(("epilogue",) if op.kind == "matmul" else ()))
    else:                               # no op yet: the fields of any op
        valid_fields = tuple(dict.fromkeys([*NODE_FIELDS, *(a for o in OPS.values() for a in o.attrs), "epilogue"]))
    for key in entry:                   # before missing fields: `input:` is a typo of `inputs`, say so
        if key not in valid_fields:
            close = did_you_mean(key, valid_fields)
            missing = next((k for k in NODE_FIELDS if k not in entry and close == f"; did you mean '{k}'?"), None)
            ctx.fail(f"unknown field {quote(key)}{f' for op {op_name}' if op else ''}{close}"
                     + (f" (the node has no '{missing}')" if missing else ""),
                     entry.line_of(key), f"{field}.{_key(key)}", valid=one_of(valid_fields))
    for key in NODE_FIELDS:
        if key not in entry:
            ctx.fail(f"missing required field '{key}' ({NODE_FIELDS[key]})", entry.line, f"{field}.{key}",
                     valid=example)
    ins = entry["inputs"]
    if not isinstance(ins, list) or len(ins) != op.arity or not all(isinstance(i, str) for i in ins):
        names = "[x, w]" if op.arity == 2 else "[x]"
        extra = "; a bias goes in the epilogue: [{add: b}]" if op.kind == "matmul" and isinstance(ins, list) \
            and len(ins) > 2 else ""
        ctx.fail(f"{op_name} takes {op.arity} input tensor name{'s' if op.arity > 1 else ''}, got {quote(ins)}",
                 entry.line_of("inputs"), f"{field}.inputs",
                 valid=f"a list of {op.arity} name{'s' if op.arity > 1 else ''} of inputs or earlier outputs, "
                       f"e.g. {names}{extra}")
    out = entry["output"]
    ctx.name(out, entry.line_of("output"), f"{field}.output")
    attrs = _attrs(op, entry, ctx, field)
    epilogue = entry.get("epilogue", [])
    if not isinstance(epilogue, list):
        ctx.fail(f"epilogue must be a list of elementwise ops, got {_got(epilogue)}", entry.line_of("epilogue"),
                 f"{field}.epilogue", valid="e.g. [{add: bias}, silu]")
    written = (f"{field}.inputs",) * len(ins)
    if not epilogue:
        return [(Node(op_name, tuple(ins), out, attrs, entry.line_of("op")), _Where(field, written, f"{field}.output"))]
    # sugar: matmul -> out_mm -> epilogue steps -> out (internal names: _internal)
    names = [_internal(f"{out}_mm", taken)] + [_internal(f"{out}_e{i}", taken) for i in range(1, len(epilogue))]
    ctx.hidden[names[0]] = f"the matmul result of {out}"
    ctx.hidden.update((n, f"{out} after epilogue[{i}]") for i, n in enumerate(names[1:]))
    names.append(out)
    nodes = [(Node(op_name, tuple(ins), names[0], attrs, entry.line_of("op")), _Where(field, written, None))]
    for i, step in enumerate(epilogue):
        eline = epilogue.line_of(i)
        efield = f"{field}.epilogue[{i}]"
        ename, operand, eattrs = _epilogue_step(step, eline, efield, ctx)
        eop = OPS[ename]
        args, fields = ((names[i],), (None,)) if eop.arity == 1 else ((names[i], operand), (None, f"{efield}.{ename}"))
        last = i == len(epilogue) - 1
        nodes.append((Node(ename, args, names[i + 1], _attrs(eop, eattrs, ctx, efield), eline),
                      _Where(efield, fields, f"{field}.output" if last else None)))
    return nodes


def _epilogue_step(step, line, field, ctx):
    """`silu` | `{add: bias}` | `{gelu: {approximate: tanh}}` -> (op, operand, attrs)."""
    valid = "a unary op name (relu, silu, gelu, sigmoid), {add|sub|mul: tensor}, or {gelu: {approximate: tanh}}"
    if isinstance(step, str):
        name, arg = step, None
    elif isinstance(step, LDict) and len(step) == 1:
        name, arg = next(iter(step.items()))
    else:
        ctx.fail(f"bad epilogue step {quote(step)}", line, field, valid=valid)
    if not isinstance(name, str) or name not in OPS or not OPS[name].elementwise:
        elementwise = [k for k, o in OPS.items() if o.elementwise]
        ctx.fail(f"unknown epilogue op {quote(name)}{did_you_mean(name, elementwise)}", line, field,
                 valid=one_of(elementwise))
    op = OPS[name]
    if op.arity == 2:
        if not isinstance(arg, str):
            ctx.fail(f"{name} in an epilogue needs its other operand: {{{name}: tensor}}", line, field, valid=valid)
        return name, arg, LDict()
    if arg is None:
        return name, None, LDict()
    if not isinstance(arg, LDict):
        ctx.fail(f"attributes of {name} must be a mapping", line, field, valid=valid)
    return name, None, arg


def _attrs(op, entry, ctx, field) -> tuple:
    out = {}
    for key, adef in op.attrs.items():
        value = _subst(entry.get(key, adef.default), ctx.params, ctx, entry.line_of(key), f"{field}.{key}")
        if not _isinstance(value, adef.type):
            ctx.fail(f"expected {_tname(adef.type)}, got {quote(value)}", entry.line_of(key), f"{field}.{key}")
        if adef.choices and value not in adef.choices:
            ctx.fail(f"{quote(value)} is not allowed{did_you_mean(value, adef.choices)}", entry.line_of(key),
                     f"{field}.{key}", valid=one_of(adef.choices))
        out[key] = value
    extra = [k for k in entry if k not in op.attrs and k not in (*NODE_FIELDS, "epilogue")]
    if extra:
        ctx.fail(f"unknown attribute {quote(extra[0])} for {op.name}{did_you_mean(extra[0], op.attrs)}",
                 entry.line_of(extra[0]), f"{field}.{_key(extra[0])}",
                 valid=one_of(op.attrs) if op.attrs else f"{op.name} takes no attributes")
    return tuple(sorted(out.items()))


def _check_order(nodes, tensors, defined_by, ctx):
    # cycles first: a cycle is reported as such, not as an ordering problem. Depth-first
    # with an explicit stack (a long chain listed last-first must not hit the recursion limit).
    state = {}
    for root, _ in nodes:
        if root.output in state:
            continue
        state[root.output] = "open"
        path, stack = [root.output], [(root, iter(root.inputs))]
        while stack:
            node, pending = stack[-1]
            dep = next((defined_by[i] for i in pending if i in defined_by), None)
            if dep is None:
                state[node.output] = "done"
                stack.pop()
                path.pop()
                continue
            if state.get(dep.output) == "open":
                cycle = [c for c in path[path.index(dep.output):] if c not in ctx.hidden] or [dep.output]
                ctx.fail("cyclic graph: " + " -> ".join(ctx.show(c) for c in cycle + cycle[:1]), node.line, "graph",
                         valid="an acyclic graph (each tensor computed from earlier ones)")
            if dep.output not in state:
                state[dep.output] = "open"
                path.append(dep.output)
                stack.append((dep, iter(dep.inputs)))
    seen = set(tensors)
    for node, where in nodes:
        for i, at in zip(node.inputs, where.ins):
            if i not in seen:
                if i in defined_by:
                    ctx.fail(f"tensor {quote(i)} is used before it is defined (at line {defined_by[i].line})",
                             node.line, at, valid="nodes listed in dependency order")
                names = seen - set(ctx.hidden)
                ctx.fail(f"tensor {quote(i)} is not defined{did_you_mean(i, names)}", node.line, at,
                         valid="inputs and node outputs: " + _few(names))
        seen.add(node.output)


def _dim(t: Tensor, d: int, ctx) -> str:
    """One dimension for messages: its size, or its dynamic parameter and range (never
    the maximum alone: that is not the size it has at run time)."""
    s = t.symbols[d]
    if s is None:
        return str(t.shape[d])
    d = ctx.dynamic[s]
    return f"{s} (dynamic {d.lo}..{d.hi})"


def _show_shape(t: Tensor) -> str:
    return "[" + ", ".join(s if s is not None else str(n) for n, s in zip(t.shape, t.symbols)) + "]"


def _infer(node: Node, where: _Where, tensors: dict, ctx) -> Tensor:
    ins = [tensors[i] for i in node.inputs]
    names = [ctx.show(i) for i in node.inputs]
    field = next((f for f in where.ins if f), where.field)
    dtypes = {t.dtype for t in ins}
    if len(dtypes) > 1:
        ctx.fail(f"{node.op} mixes dtypes: " + ", ".join(f"{n} is {t.dtype}" for n, t in zip(names, ins)),
                 node.line, field, valid="operands of one dtype")
    fail = f"shape mismatch in {node.op}" + (f" -> {node.output}: " if node.output not in ctx.hidden else ": ")
    if OPS[node.op].kind == "matmul":
        (a, b), tb = ins, node.attr.get("transpose_b")
        layout = "[N, K] (transpose_b: true)" if tb else "[K, N] (transpose_b: false)"
        if len(a.shape) != 2 or len(b.shape) != 2:
            ctx.fail(fail + f"matmul takes 2-D operands, got {names[0]} {_show_shape(a)} and {names[1]} "
                     f"{_show_shape(b)}", node.line, field, valid=f"{names[0]} as [M, K] and {names[1]} as {layout}")
        kb = 1 if tb else 0
        if (a.shape[1], a.symbols[1]) != (b.shape[kb], b.symbols[kb]):
            dynamic = [s for s in (a.symbols[1], b.symbols[kb]) if s is not None]
            n = b.symbols[1 - kb] or str(b.shape[1 - kb])
            want = f"[{n}, {a.shape[1]}]" if tb else f"[{a.shape[1]}, {n}]"
            ctx.fail(fail + f"K mismatch: {names[0]} has K={_dim(a, 1, ctx)} (dimension 1) but {names[1]} has "
                     f"K={_dim(b, kb, ctx)} (dimension {kb}{', transpose_b' if tb else ''})", node.line, field,
                     valid=f"{names[0]} as [M, K] and {names[1]} as {layout} with the same K"
                           + (f"; a dynamic size ({dynamic[0]}) only matches the same parameter, never a static K"
                              if dynamic else f", e.g. {names[1]} of shape {want}"))
    try:
        if OPS[node.op].kind == "matmul":
            shape = matmul_shape(ins[0].shape, ins[1].shape, node.attr, tuple(names))
            syms = symbols.matmul(ins[0].shape, ins[0].symbols, ins[1].shape, ins[1].symbols,
                                  node.attr.get("transpose_b"), tuple(names))
        elif len(ins) == 2:
            _check_broadcast(ins, names, node, field, fail, ctx)
            shape = broadcast(ins[0].shape, ins[1].shape)
            syms = symbols.broadcast(ins[0].shape, ins[0].symbols, ins[1].shape, ins[1].symbols)
            if (shape, syms) not in ((ins[0].shape, ins[0].symbols), (ins[1].shape, ins[1].symbols)):
                ctx.fail(fail + f"broadcasting {names[0]} {_show_shape(ins[0])} with {names[1]} "
                         f"{_show_shape(ins[1])} grows both operands", node.line, field,
                         valid="one operand of the result's shape, the other broadcast into it (each of its "
                               "dimensions equal or 1)")
        else:
            shape, syms = ins[0].shape, ins[0].symbols
    except ShapeError as err:           # the checks above say it first; this is the last guard
        ctx.fail(fail + str(err), node.line, field)
    return Tensor(node.output, shape, ins[0].dtype, None, syms)


def _check_broadcast(ins, names, node, field, fail, ctx):
    """numpy broadcasting of two operands, each dimension a size or a dynamic parameter."""
    a, b = ins
    for i in range(1, max(len(a.shape), len(b.shape)) + 1):
        x = (a.shape[-i], a.symbols[-i]) if i <= len(a.shape) else (1, None)
        y = (b.shape[-i], b.symbols[-i]) if i <= len(b.shape) else (1, None)
        if x == y or (1, None) in (x, y):
            continue
        dx = _dim(a, len(a.shape) - i, ctx) if i <= len(a.shape) else "1"
        dy = _dim(b, len(b.shape) - i, ctx) if i <= len(b.shape) else "1"
        dynamic = x[1] is not None or y[1] is not None
        ctx.fail(fail + f"{names[0]} {_show_shape(a)} and {names[1]} {_show_shape(b)} do not broadcast "
                 f"(dimension -{i}: {dx} vs {dy})", node.line, field,
                 valid="shapes that broadcast (numpy: each dimension, from the right, equal or 1 in one operand)"
                       + ("; a dynamic dimension only matches the same parameter, or a static 1" if dynamic else ""))


def _check_fused(graph, ctx):
    """Each fused store's expression within the renderers' reach (spec/limits.py USES)."""
    def measure(e):              # (depth, terms); depth <= MAX_GRAPH_NODES, so recursion is bounded
        if not isinstance(e, Call):
            return 0, 1
        sub = [measure(a) for a in e.args]
        return 1 + max(d for d, _ in sub), limits.USES.get(e.op, 1) * sum(t for _, t in sub)
    for g in fuse(graph):
        depth, terms = measure(g.expr)
        if depth > limits.MAX_FUSED_DEPTH or terms > limits.MAX_FUSED_TERMS:
            node = g.nodes[-1]
            ctx.fail(f"the elementwise chain fused into {quote(ctx.show(g.output))} is {depth} ops deep and renders "
                     f"{terms} operand reads", node.line, "graph",
                     valid=f"at most {limits.MAX_FUSED_DEPTH} ops and {limits.MAX_FUSED_TERMS} reads per fused "
                           "store: split the chain (an intermediate that is also an output is not fused)")


def _outputs(doc, tensors, nodes, ctx):
    outs = doc["outputs"]
    line = doc.line_of("outputs")
    ctx.at(line, "outputs")
    produced = {n.output for n in nodes} - set(ctx.hidden)      # internal names are not the spec's
    if not outs:
        ctx.fail("a spec needs at least one output", line, "outputs", valid="node outputs: " + _few(produced))
    for o in outs:
        if not isinstance(o, str):
            ctx.fail(f"an output is a tensor name, got {quote(o)}", line, "outputs",
                     valid="node outputs: " + _few(produced))
    if len(set(outs)) != len(outs):
        dup = next(o for i, o in enumerate(outs) if o in outs[:i])
        ctx.fail(f"duplicate name {quote(dup)} in outputs", line, "outputs",
                 valid="each output once: [" + _few(dict.fromkeys(outs), ordered=True) + "]")
    for o in outs:
        if o not in produced:
            where = "is a graph input" if o in tensors else "is not defined" + did_you_mean(o, produced)
            ctx.fail(f"output {quote(o)} {where}", line, "outputs", valid="node outputs: " + _few(produced))
    return outs


def _targets(doc, graph, ctx) -> tuple:
    """The variant's targets. `targets:` is a list (every variant), or a mapping
    target -> {param: [values]} that builds the target only for variants whose params
    match (e.g. tir-cpu for float32, tir-cuda for bfloat16 and float16)."""
    TARGETS = ctx.targets
    raw = doc.get("targets", list(DEFAULT_TARGETS))
    line = doc.line_of("targets")
    ctx.at(line, "targets")
    if not raw:
        ctx.fail("empty target list", line, "targets", valid=one_of(TARGETS))
    for t in raw:
        if not isinstance(t, str) or t not in TARGETS:
            tline = raw.line_of(t) if isinstance(raw, LDict) else line
            ctx.fail(f"unknown target {quote(t)}{did_you_mean(t, TARGETS)}", tline, "targets", valid=one_of(TARGETS))
    if isinstance(raw, list) and len(set(raw)) != len(raw):
        dup = next(t for i, t in enumerate(raw) if t in raw[:i])
        ctx.fail(f"duplicate target {quote(dup)}", line, "targets",
                 valid=f"each target once: [{', '.join(dict.fromkeys(raw))}]")
    chosen = []
    for t in raw:
        tline = raw.line_of(t) if isinstance(raw, LDict) else line
        info = TARGETS[t]
        if isinstance(raw, LDict) and not _matches(raw[t], ctx, tline, f"targets.{t}", info):
            continue
        if ctx.kind is not None and (ctx.kind == "dynamic") != info.dynamic:
            continue                        # the other kind of variant builds this target
        bad = sorted({x.dtype for x in graph.tensors.values()} - set(info.dtypes))
        if bad:
            ctx.fail(f"target {t} does not support dtype {bad[0]} (variant {show_params(ctx.params)})", tline,
                     "targets",
                     valid=f"{t} dtypes: {one_of(info.dtypes)}; restrict it with targets: {{{t}: {{dtype: [...]}}}}")
        chosen.append(t)
    if not chosen and ctx.kind is None:
        ctx.fail(f"no target matches the variant {show_params(ctx.params)}", line, "targets",
                 valid="a target filter that matches every variant")
    return tuple(chosen)


def _matches(where, ctx, line, field, info) -> bool:
    if where is None:
        return True
    if not isinstance(where, LDict):
        ctx.fail(f"a target filter is a mapping param -> [values], got {quote(where)}", line, field,
                 valid="e.g. {dtype: [float32]}")
    for key, allowed in where.items():
        if key not in ctx.params:
            ctx.fail(f"filter on undefined parameter {quote(key)}{did_you_mean(key, ctx.params)}", where.line_of(key),
                     f"{field}.{key}" if is_name(key) else field, valid="parameters " + one_of(ctx.params))
        allowed = allowed if isinstance(allowed, list) else [allowed]
        if ctx.kind == "dynamic" and key in ctx.dynamic:
            if info.dynamic:
                d = ctx.dynamic[key]
                ctx.fail(f"{info.name} builds one artifact for every {key} in [{d.lo}, {d.hi}]: a filter on "
                         f"{key} only applies to targets that expand it into buckets", where.line_of(key),
                         f"{field}.{key}", valid=f"no {key} filter for {info.name}, or narrow the range of {key}")
            return False                    # a bucket variant decides
        if ctx.params[key] not in allowed:
            return False
    return True


def _check_target_layouts(inputs, tensors, targets, ctx):
    """Layouts against the DMA limits of targets that move them with a DMA engine."""
    for t in targets:
        limits = ctx.targets[t].dma_limits
        for name in inputs:
            x = tensors[name]
            if limits is None or x.layout is None:
                continue
            try:
                layouts.check_dma(x.layout, x.dtype, name, limits)
            except LayoutError as err:
                ctx.fail(f"{err.message} (target {t})", inputs[name].line_of("layout"), f"inputs.{name}.layout",
                         valid=err.valid, cls=LayoutError)


def _check_target_limits(doc, graph, targets, schedule, ctx):
    """Each target's load-time check (TargetInfo.load_check: mlir-aie, does a tiling fit the
    device? tir-cpu, can it schedule this graph?), so `check` reports what a build would hit.
    A raised FusebuildError points at the target's hints (else its `targets` line); a
    returned problem at the hint, input or node it names (_limit_where)."""
    # node modes render each node alone: check those designs too
    graphs = [graph] + ([graph.subgraph(n) for n in graph.nodes] if doc.get("mode") in ("separate", "compare") else [])
    for t in targets:
        try:
            problems = [p for g in graphs for p in ctx.targets[t].check(g, schedule.get(t, {}))]
        except FusebuildError as err:
            raw = doc.get("schedule", LDict())
            line = raw.line_of(t) if t in raw else doc.line_of("targets")
            ctx.fail(f"target {t} (variant {show_params(ctx.params)}): {ctx.unhide(err.message)}", line,
                     f"schedule.{t}" if t in raw else "targets", valid=ctx.unhide(err.valid))
        for problem in problems:
            line, field = _limit_where(doc, graph, t, problem)
            ctx.fail(f"target {t} (variant {show_params(ctx.params)}): "
                     f"{ctx.unhide(str(getattr(problem, 'message', problem)))}", line, field,
                     valid=ctx.unhide(getattr(problem, "valid", None) or None))


def _limit_where(doc, graph, target, problem) -> tuple:
    """(line, field) a limit problem points at: the hint, input or node it names, else the target."""
    hint, tensor, node = (getattr(problem, k, None) for k in ("hint", "input", "node"))
    sched = doc.get("schedule", LDict())
    if hint and isinstance(sched.get(target), LDict) and hint in sched[target]:
        return sched[target].line_of(hint), f"schedule.{target}.{hint}"
    if tensor and tensor in doc["inputs"]:
        tdef = doc["inputs"][tensor]
        key = "layout" if isinstance(tdef, LDict) and "layout" in tdef else "shape"
        return (tdef.line_of(key) if isinstance(tdef, LDict) else doc["inputs"].line_of(tensor),
                f"inputs.{tensor}.{key}")
    found = [n.line for n in graph.nodes if n.output == node]
    for i, entry in enumerate(doc["graph"]):
        if found and isinstance(entry, LDict) and entry.line_of("op") == found[0]:
            return found[0], f"graph[{i}]"
    raw = doc.get("targets")
    return (raw.line_of(target) if isinstance(raw, LDict) else doc.line_of("targets")), "targets"


def _tolerance(doc, ctx) -> dict:
    """Per-dtype allowances added to the modelled error bound (run/validate.py): finite,
    non-negative, and below the caps of spec/limits.py (beyond them a wrong output passes)."""
    raw = doc.get("tolerance", LDict())
    ctx.at(doc.line_of("tolerance"), "tolerance")
    caps = {"atol": limits.MAX_ATOL, "rtol": limits.MAX_RTOL}
    valid = f"finite numbers: 0 <= atol <= {limits.MAX_ATOL}, 0 <= rtol <= {limits.MAX_RTOL}"
    out = {}
    for dtype, tol in raw.items():
        line = raw.line_of(dtype)
        if dtype not in DTYPES:
            ctx.fail(f"unknown dtype {quote(dtype)}{did_you_mean(dtype, DTYPES)}", line, "tolerance",
                     valid=one_of(DTYPES))
        if not isinstance(tol, LDict) or not tol or not set(tol) <= set(caps):
            ctx.fail(f"expected {{atol: number, rtol: number}}, got {quote(tol)}", line, f"tolerance.{dtype}",
                     valid=valid)
        for key, v in tol.items():
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                ctx.fail(f"{key} must be a number, got {quote(v)}", tol.line_of(key), f"tolerance.{dtype}.{key}",
                         valid=valid)
            if not (math.isfinite(v) and 0 <= v <= caps[key]):
                absurd = math.isfinite(v) and v > caps[key]
                ctx.fail(f"{key} {quote(v)} is not allowed: it would pass outputs that are plainly wrong" if absurd
                         else f"{key} {quote(v)} is not a finite, non-negative number",
                         tol.line_of(key), f"tolerance.{dtype}.{key}", valid=valid)
        out[dtype] = {k: float(v) for k, v in tol.items()}
    return out


def _schedule(doc, targets, ctx) -> dict:
    """Per-target hints, checked against each backend's declaration (backends/<x>/hints.py)."""
    raw = doc.get("schedule", LDict())
    ctx.at(doc.line_of("schedule"), "schedule")
    out = {}
    for target, hints in raw.items():
        line = raw.line_of(target)
        if target not in ctx.targets:
            ctx.fail(f"unknown target {quote(target)}{did_you_mean(target, ctx.targets)}", line, "schedule",
                     valid=one_of(ctx.targets))
        table = ctx.targets[target].hints
        if not isinstance(hints, LDict):
            ctx.fail("schedule hints are a mapping", line, f"schedule.{target}", valid=one_of(table.names))
        for key, value in hints.items():
            if key not in table:
                ctx.fail(f"unknown hint {quote(key)}{did_you_mean(key, table.names)}", hints.line_of(key),
                         f"schedule.{target}",
                         valid=one_of(table.names) if table.names else "no hints for this target")
            problem = table[key].problem(value)
            if problem:
                ctx.fail(problem, hints.line_of(key), f"schedule.{target}.{key}", valid=table[key].valid())
        out[target] = dict(hints)
    return out


def _mode(doc, ctx) -> str:
    mode = doc.get("mode", "fused")
    if mode not in MODES:
        ctx.fail(f"unknown mode {quote(mode)}{did_you_mean(mode, MODES)}", doc.line_of("mode"), "mode",
                 valid=one_of(MODES))
    return mode


def _check_scalars(doc, ctx):
    """Top-level values every variant shares: the seed's range (the input generator takes 64 bits)."""
    seed = doc.get("seed", 0)
    if not 0 <= seed <= limits.MAX_SEED:
        ctx.fail(f"seed {quote(seed)} is out of range", doc.line_of("seed"), "seed",
                 valid=f"an integer in [0, {limits.MAX_SEED}]")


def _key(key) -> str:
    """A mapping key as a field name: itself if it is a plain name, else quoted."""
    return key if is_name(key) else quote(key)


def _few(names, n: int = 12, ordered: bool = False) -> str:
    """one_of for lists that a spec controls (bounded)."""
    names = [str(x) for x in names] if ordered else sorted(str(x) for x in names)
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")
