"""What an artifact takes and returns: its signature, as plain data (no torch, no toolchain).

A signature lists the graph's inputs (in spec order) and outputs, each with a shape, a
dtype and an optional operand layout (the tiled-strided dims of ir.layouts, as JSON).
A dimension is a number, or a dynamic symbol with a range: `symbols[d]` names the
parameter the dimension equals (None for a fixed one), `shape[d]` then holds its upper
bound, and `dynamic` maps each symbol to its inclusive range (lo, hi). A static
artifact has no symbols and an empty `dynamic`.

`bind(shapes, dtypes)` matches actual inputs against the signature: it returns the
value of every symbol, or raises `Mismatch` saying which input and dimension differ;
`output_shapes(values)` gives the shapes the outputs will have. Validation builds the
signature from the graph it validates and writes it into the artifact's manifest
(runtime/manifest.py); the runtime reads it back, so both sides agree by construction.
"""
from __future__ import annotations

from dataclasses import dataclass, field


class Mismatch(Exception):
    """Inputs that a signature does not take (the message says which and why)."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind            # "count" | "rank" | "shape" | "range" | "dtype"


@dataclass(frozen=True)
class TensorSig:
    name: str
    shape: tuple                    # ints; a dynamic dim holds its upper bound
    dtype: str
    layout: tuple | None = None     # ir.layouts dims ((stride, bound), ...) per dim, or None (row-major)
    symbols: tuple = ()             # per dim: symbol name or None; () when fully static

    def dim(self, d: int) -> str:
        """How a dimension reads in messages: 2048, or M (the symbol)."""
        sym = self.symbols[d] if self.symbols else None
        return sym if sym else str(self.shape[d])

    def describe(self, dynamic: dict | None = None) -> str:
        dims = []
        for d, n in enumerate(self.shape):
            sym = self.symbols[d] if self.symbols else None
            if sym and dynamic and sym in dynamic:
                lo, hi = dynamic[sym]
                dims.append(f"{sym}={lo}..{hi}")
            else:
                dims.append(str(n))
        return f"{self.name} {self.dtype}[{', '.join(dims)}]"

    def to_json(self) -> dict:
        out = {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}
        if self.layout is not None:
            out["layout"] = [[list(p) for p in levels] for levels in self.layout]
        if any(self.symbols):
            out["symbols"] = list(self.symbols)
        return out

    @staticmethod
    def from_json(d: dict) -> TensorSig:
        layout = d.get("layout")
        return TensorSig(d["name"], tuple(d["shape"]), d["dtype"],
                         tuple(tuple(tuple(p) for p in levels) for levels in layout) if layout else None,
                         tuple(d.get("symbols") or ()))


@dataclass(frozen=True)
class Signature:
    inputs: tuple                   # TensorSig, spec order
    outputs: tuple                  # TensorSig, spec order
    dynamic: dict = field(default_factory=dict)    # symbol -> (lo, hi), inclusive

    @property
    def input_names(self) -> tuple:
        return tuple(t.name for t in self.inputs)

    @property
    def output_names(self) -> tuple:
        return tuple(t.name for t in self.outputs)

    # --- matching -----------------------------------------------------------------------
    def bind(self, shapes, dtypes) -> dict:
        """{symbol: value} for inputs of these shapes and dtypes (spec order); raises Mismatch."""
        if len(shapes) != len(self.inputs):
            raise Mismatch(f"takes {len(self.inputs)} inputs ({', '.join(self.input_names)}), got {len(shapes)}",
                           "count")
        values: dict = {}
        for t, shape in zip(self.inputs, shapes):
            shape = tuple(shape)
            if len(shape) != len(t.shape):
                raise Mismatch(f"{t.name} has {len(shape)} dimensions {list(shape)}, the artifact takes "
                               f"{len(t.shape)}: {t.describe(self.dynamic)}", "rank")
            for d, (n, want) in enumerate(zip(shape, t.shape)):
                sym = t.symbols[d] if t.symbols else None
                if sym is None:
                    if n != want:
                        raise Mismatch(f"{t.name} is [{', '.join(map(str, shape))}], the artifact takes "
                                       f"{t.describe(self.dynamic)}", "shape")
                    continue
                lo, hi = self.dynamic.get(sym, (want, want))
                if sym in values and values[sym] != n:
                    raise Mismatch(f"{t.name} dimension {d} is {n} but {sym}={values[sym]} from an earlier input",
                                   "shape")
                if not lo <= n <= hi:
                    raise Mismatch(f"{t.name}: {sym}={n} is outside the artifact's range {lo}..{hi}", "range")
                values[sym] = n
        for t, dtype in zip(self.inputs, dtypes):
            if dtype != t.dtype:
                raise Mismatch(f"{t.name} is {dtype}, the artifact takes {t.dtype}", "dtype")
        return values

    def output_shapes(self, values: dict) -> list:
        """The outputs' shapes once every symbol has a value (bind's result)."""
        return [tuple(values[t.symbols[d]] if t.symbols and t.symbols[d] else n for d, n in enumerate(t.shape))
                for t in self.outputs]

    def describe(self) -> str:
        return ", ".join(t.describe(self.dynamic) for t in self.inputs)

    # --- JSON ---------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"inputs": [t.to_json() for t in self.inputs], "outputs": [t.to_json() for t in self.outputs],
                "dynamic": {k: list(v) for k, v in sorted(self.dynamic.items())}}

    @staticmethod
    def from_json(d: dict) -> Signature:
        return Signature(tuple(TensorSig.from_json(t) for t in d["inputs"]),
                         tuple(TensorSig.from_json(t) for t in d["outputs"]),
                         {k: tuple(v) for k, v in (d.get("dynamic") or {}).items()})

    @staticmethod
    def of_graph(graph, dynamic: dict | None = None) -> Signature:
        """The signature of a graph (ir.graph.Graph). Dynamic dims come from the IR:
        `Tensor.symbols` per dim and the ranges in `dynamic` (else `graph.dynamic`)."""
        if dynamic is None:
            dynamic = getattr(graph, "dynamic", None) or {}

        def sig(name):
            t = graph.tensors[name]
            symbols = tuple(getattr(t, "symbols", None) or ())
            layout = t.layout.dims if t.layout is not None else None
            return TensorSig(name, tuple(t.shape), t.dtype, layout, symbols if any(symbols) else ())
        return Signature(tuple(sig(n) for n in graph.inputs), tuple(sig(n) for n in graph.outputs),
                         {k: tuple(v) for k, v in dynamic.items()})
