"""An oracle for layouts independent of ir/layouts.py (issue 15, item 4).

Validation packs inputs with layouts.pack, the same code the renderers' index arithmetic
comes from, so a bug shared by both (tiles ordered column-major, say) passes every
validation. Here each layout's offsets are written out separately, as the formulas a
reader of the spec would write, and checked against pack/unpack; then built kernels are fed
buffers packed by the oracle alone (not through layouts.py) and must still match torch."""
from __future__ import annotations

import dataclasses
import itertools
import random

import pytest
import torch

from fusebuild.ir import layouts as L
from fusebuild.ir.graph import Tensor


def oracle_row_major(i, j, m, n):
    return i * n + j


def oracle_col_major(i, j, m, n):
    return j * m + i


def oracle_tiled(r, s):
    """r x s tiles, tiles in row-major order, each tile row-major."""
    def offset(i, j, m, n):
        tile = (i // r) * (n // s) + (j // s)
        return tile * (r * s) + (i % r) * s + (j % s)
    return offset


def oracle_col_tiles(r, s):
    """r x s tiles, tiles in COLUMN-major order, each tile row-major (a `dims` layout)."""
    def offset(i, j, m, n):
        tile = (j // s) * (m // r) + (i // r)
        return tile * (r * s) + (i % r) * s + (j % s)
    return offset


def col_tiles_dims(m, n, r, s) -> dict:
    return {"dims": [[[r * s, m // r], [s, r]], [[r * s * (m // r), n // s], [1, s]]]}


def pack_by_oracle(t: torch.Tensor, offset) -> torch.Tensor:
    m, n = t.shape
    flat = torch.full((m * n,), float("nan"), dtype=t.dtype)
    for i, j in itertools.product(range(m), range(n)):
        flat[offset(i, j, m, n)] = t[i, j]
    assert not flat.isnan().any()
    return flat


CASES = [
    ("row_major", (6, 10), "row_major", oracle_row_major),
    ("col_major", (6, 10), "col_major", oracle_col_major),
    ("tiled 2x5", (6, 10), {"tiled": [2, 5]}, oracle_tiled(2, 5)),
    ("tiled 3x2", (6, 10), {"tiled": [3, 2]}, oracle_tiled(3, 2)),
    ("column-major tiles 2x5", (6, 10), col_tiles_dims(6, 10, 2, 5), oracle_col_tiles(2, 5)),
    ("column-major tiles 3x2", (6, 10), col_tiles_dims(6, 10, 3, 2), oracle_col_tiles(3, 2)),
]


@pytest.mark.parametrize("what,shape,spec,oracle", CASES, ids=[c[0] for c in CASES])
def test_pack_and_unpack_match_the_oracle(what, shape, spec, oracle):
    layout = L.parse_layout(spec, shape, "w")
    t = torch.arange(shape[0] * shape[1], dtype=torch.float32).reshape(shape)
    want = pack_by_oracle(t, oracle)
    assert torch.equal(layout.pack(t), want), what
    assert torch.equal(layout.unpack(want), t), what
    from fusebuild.runtime.call import pack, unpack  # what validation and fusebuild.load use
    assert torch.equal(pack(t, layout.dims), want), what
    assert torch.equal(unpack(want, layout.dims, shape), t), what
    for i, j in itertools.product(range(shape[0]), range(shape[1])):
        assert layout.offset((i, j)) == oracle(i, j, *shape)


def test_the_arithmetic_bijection_check_agrees_with_enumeration():
    """Random small layouts: layouts.check (arithmetic) accepts exactly the bijections."""
    rng = random.Random(0)
    for _ in range(500):
        dims = [[[rng.choice([0, 1, 2, 3, 4, 6, 8, 12]), rng.choice([1, 2, 3])] for _ in range(rng.randint(1, 2))]
                for _ in range(2)]
        layout = L.Layout(tuple(tuple((s, b) for s, b in lv) for lv in dims))
        shape = layout.shape
        offsets = sorted(layout.offset(ix) for ix in itertools.product(*(range(d) for d in shape)))
        bijective = offsets == list(range(layout.size))
        try:
            layout.check(shape, "w")
            accepted = True
        except L.LayoutError:
            accepted = False
        assert accepted == bijective, dims


# --- built kernels fed oracle-packed buffers ----------------------------------------------

SPEC = """\
name: oracle
params: {M: [4], N: 12, K: 10}
inputs:
  x: {shape: [M, K], dtype: float32}
  w: {shape: [N, K], dtype: float32, layout: LAYOUT}
  b: {shape: [N], dtype: float32}
graph:
  - {op: matmul, inputs: [x, w], output: y, transpose_b: true, epilogue: [{add: b}, silu]}
outputs: [y]
targets: [TARGET]
"""


def usable(target):
    from fusebuild.backends import get_backend
    return get_backend(target).toolchain().available


@pytest.mark.slow
@pytest.mark.parametrize("target", [pytest.param(t, marks=pytest.mark.skipif(not usable(t), reason=f"{t}: none"))
                                    for t in ("tir-cpu", "mlir-cpu")])
@pytest.mark.parametrize("layout,oracle", [("{tiled: [3, 5]}", oracle_tiled(3, 5)),
                                           (str(col_tiles_dims(12, 10, 3, 5)), oracle_col_tiles(3, 5))],
                         ids=["tiled", "column-major-tiles"])
def test_kernels_read_oracle_packed_weights(tmp_path, target, layout, oracle):
    from fusebuild.backends import TARGETS, get_backend
    from fusebuild.backends.base import RenderJob
    from fusebuild.spec import parse_spec
    v = parse_spec(SPEC.replace("LAYOUT", layout).replace("TARGET", target), "o.yaml").variants[0]
    backend = get_backend(target)
    rendered = backend.render(RenderJob(v.graph, TARGETS[target].hints.resolve({}), v.spec, v.name))
    for name, text in rendered.files.items():
        (tmp_path / name).write_text(text)
    backend.compile(tmp_path, tmp_path)
    backend.assemble(tmp_path, tmp_path)
    gen = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(s, generator=gen) for s in ((4, 10), (12, 10), (12,)))
    # the kernel gets the oracle's buffer as is: w declared flat, so layouts.pack never runs
    flat = dataclasses.replace(v.graph, tensors=dict(v.graph.tensors, w=Tensor("w", (120,), "float32")))
    y = backend.run(tmp_path, flat, {"x": x, "w": pack_by_oracle(w, oracle), "b": b})["y"]
    want = torch.nn.functional.silu(x @ w.T + b)
    assert torch.allclose(y, want, atol=1e-5), (y - want).abs().max()
