"""ir/ops.py: the op table against every backend.

1. Every elementwise op has a macro in every backend's templates/<folder>/ops.j2, taking
   the op's operands and attributes (a pure text check over the templates and the table).
2. The op x target grid: each op on its own, and each elementwise op in epilogue position
   after a matmul, on each target that validates here (tir-cpu, mlir-cpu; mlir-aie by
   emulation, in epilogue position: it renders GEMMs, not lone elementwise kernels), one
   line each, all through conftest.check_against_torch (render -> compile -> assemble ->
   run -> compare with the op's torch reference; no doit).
"""
from __future__ import annotations

import re

import pytest

from fusebuild.backends import get_backend
from fusebuild.ir.ops import OPS

from conftest import REPO, check_against_torch

TEMPLATES = REPO / "templates"
MUST_HAVE_OPS_J2 = ("tir", "mlir", "tilelang")      # every other folder: checked if it has an ops.j2
ELEMENTWISE = sorted(n for n, o in OPS.items() if o.elementwise)
MACRO = re.compile(r"{%-?\s*macro\s+(\w+)\(([^)]*)\)\s*-?%}")


def macros(folder: str) -> dict:
    """{macro name: [parameter names]} of templates/<folder>/ops.j2."""
    text = (TEMPLATES / folder / "ops.j2").read_text()
    return {name: [p.split("=")[0].strip() for p in params.split(",") if p.strip()]
            for name, params in MACRO.findall(text)}


def ops_j2_folders() -> list:
    found = sorted(p.parent.name for p in TEMPLATES.glob("*/ops.j2"))
    assert set(MUST_HAVE_OPS_J2) <= set(found), f"missing ops.j2 in {sorted(set(MUST_HAVE_OPS_J2) - set(found))}"
    return found


@pytest.mark.parametrize("folder", ops_j2_folders())
def test_every_elementwise_op_has_a_macro_in_every_ops_j2(folder):
    ms = macros(folder)
    missing = [op for op in ELEMENTWISE if op not in ms]
    assert not missing, f"templates/{folder}/ops.j2 has no macro for {missing}"
    strays = [m for m in ms if not m.startswith("_") and m not in OPS]
    assert not strays, f"templates/{folder}/ops.j2: macros {strays} are not ops of ir/ops.py (private ones start with _)"
    # each macro takes the op's attributes by name, and its operands plus the same extra
    # parameters (result name, dtype) as every other macro of the file
    extras = set()
    for op in ELEMENTWISE:
        params, attrs = ms[op], list(OPS[op].attrs)
        assert set(attrs) <= set(params), f"templates/{folder}/ops.j2: {op}({', '.join(params)}) lacks {attrs}"
        extras.add(len(params) - len(attrs) - OPS[op].arity)
    assert len(extras) == 1, f"templates/{folder}/ops.j2: macros take inconsistent operand counts"


# --- the grid -------------------------------------------------------------------------------

ALONE = """\
name: {name}
inputs:
  a: {{shape: [8, 32], dtype: float32}}
{b}graph:
  - {{op: {op}, inputs: [{ins}], output: y{attrs}}}
outputs: [y]
targets: [{target}]
seed: 1
"""
MATMUL = """\
name: {name}
inputs:
  x: {{shape: [8, 16], dtype: float32}}
  w: {{shape: {w}, dtype: float32}}
{b}graph:
  - {{op: matmul, inputs: [x, w], output: y, transpose_b: {tb}{epilogue}}}
outputs: [y]
targets: [{target}]
seed: 1
"""
B_ROW = "  b: {shape: [32], dtype: float32}\n"          # broadcast along the rows


def spec(op: str, attrs: dict, position: str, target: str) -> str:
    name = f"{op}_{position}"
    binary = OPS[op].kind == "binary"
    if op == "matmul":
        tb = attrs["transpose_b"]
        return MATMUL.format(name=name, w="[32, 16]" if tb else "[16, 32]", b="", tb=str(tb).lower(), epilogue="",
                             target=target)
    if position == "alone":
        text = "".join(f", {k}: {v}" for k, v in attrs.items())
        return ALONE.format(name=name, op=op, b=B_ROW if binary else "", ins="a, b" if binary else "a",
                            attrs=text, target=target)
    step = f"{{{op}: b}}" if binary else (f"{{{op}: {{{', '.join(f'{k}: {v}' for k, v in attrs.items())}}}}}"
                                          if attrs else op)
    return MATMUL.format(name=name, w="[32, 16]", b=B_ROW if binary else "", tb="true",
                         epilogue=f", epilogue: [{step}]", target=target)


CPU = ("tir-cpu", "mlir-cpu")
ALL = ("tir-cpu", "mlir-cpu", "mlir-aie")
GRID = [
    # op         attributes                  position    targets
    ("matmul",  {"transpose_b": True},       "alone",    ALL),
    ("matmul",  {"transpose_b": False},      "alone",    ALL),
    ("add",     {},                          "alone",    CPU),
    ("add",     {},                          "epilogue", ALL),
    ("sub",     {},                          "alone",    CPU),
    ("sub",     {},                          "epilogue", ALL),
    ("mul",     {},                          "alone",    CPU),
    ("mul",     {},                          "epilogue", ALL),
    ("relu",    {},                          "alone",    CPU),
    ("relu",    {},                          "epilogue", ALL),
    ("sigmoid", {},                          "alone",    CPU),
    ("sigmoid", {},                          "epilogue", ALL),
    ("silu",    {},                          "alone",    CPU),
    ("silu",    {},                          "epilogue", ALL),
    ("gelu",    {"approximate": "exact"},    "alone",    CPU),
    ("gelu",    {"approximate": "exact"},    "epilogue", ALL),
    ("gelu",    {"approximate": "tanh"},     "alone",    CPU),
    ("gelu",    {"approximate": "tanh"},     "epilogue", ALL),
]


def test_the_grid_covers_every_op_position_and_attribute_value():
    for op, o in OPS.items():
        assert any(g[0] == op and g[2] == "alone" for g in GRID), f"{op}: no line on its own"
        if o.elementwise:
            assert any(g[0] == op and g[2] == "epilogue" for g in GRID), f"{op}: no line in epilogue position"
        for attr, adef in o.attrs.items():
            for value in adef.choices or ((True, False) if adef.type is bool else (adef.default,)):
                assert any(g[0] == op and g[1].get(attr, adef.default) == value for g in GRID), (op, attr, value)


def usable(target: str) -> bool:
    return get_backend(target).toolchain().available


CELLS = [pytest.param(op, attrs, position, target, id=f"{op}{''.join('-' + str(v) for v in attrs.values())}"
                      f"-{position}-{target}",
                      marks=pytest.mark.skipif(not usable(target), reason=f"{target}: toolchain not here"))
         for op, attrs, position, targets in GRID for target in targets]


@pytest.mark.parametrize("op,attrs,position,target", CELLS)
def test_op_on_target_matches_torch(tmp_path, op, attrs, position, target):
    check_against_torch(tmp_path, spec(op, attrs, position, target), target)
