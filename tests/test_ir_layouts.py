"""ir/layouts.py: offsets of the IRON/stream GEMM tilings against offsets written by hand, DMA
patterns and limits, and the errors a bad layout gets."""
from __future__ import annotations

import textwrap

import pytest

from fusebuild.ir import layouts as L
from fusebuild.errors import LayoutError
from fusebuild.spec import parse_spec


def rows(layout, *which):
    offs = layout.offsets().reshape(layout.shape)
    return [list(map(int, offs[r])) for r in which]


def test_iron_a_tiling_r4_s8():
    # A (M x K) in r x s = 4 x 8 MAC tiles, tiles row-major, each tile row-major
    a = L.tiled((8, 16), 4, 8)
    assert rows(a, 0, 1, 3, 4) == [
        [0, 1, 2, 3, 4, 5, 6, 7, 32, 33, 34, 35, 36, 37, 38, 39],
        [8, 9, 10, 11, 12, 13, 14, 15, 40, 41, 42, 43, 44, 45, 46, 47],
        [24, 25, 26, 27, 28, 29, 30, 31, 56, 57, 58, 59, 60, 61, 62, 63],
        [64, 65, 66, 67, 68, 69, 70, 71, 96, 97, 98, 99, 100, 101, 102, 103]]


def test_iron_b_tiling_s8_t8():
    b = L.tiled((16, 16), 8, 8)
    assert rows(b, 0, 7, 8) == [
        [0, 1, 2, 3, 4, 5, 6, 7, 64, 65, 66, 67, 68, 69, 70, 71],
        [56, 57, 58, 59, 60, 61, 62, 63, 120, 121, 122, 123, 124, 125, 126, 127],
        [128, 129, 130, 131, 132, 133, 134, 135, 192, 193, 194, 195, 196, 197, 198, 199]]


def test_bfp16_variant_r8_s8():
    a = L.tiled((16, 8), 8, 8)          # one column of 8 x 8 tiles
    assert rows(a, 0, 7, 8, 15) == [list(range(0, 8)), list(range(56, 64)), list(range(64, 72)),
                                    list(range(120, 128))]
    # the same layout written in the long form is the same map
    long = L.parse_layout({"dims": [[[64, 2], [8, 8]], [[8, 1], [1, 8]]]}, (16, 8), "a")
    assert list(long.offsets()) == list(a.offsets())


def test_region_loops_and_dma_ops_of_a_tiled_operand():
    a = L.tiled((8, 16), 4, 8)
    rows_ = L.region_loops(a, 0, 4, 4)         # rows 4..7: one tile row
    kt, cols = L.split_loops(L.region_loops(a, 1, 0, 16), 8)
    assert rows_ == [(4, 8)] and kt == [(2, 32)] and cols == [(8, 1)]
    # tile by tile in the layout's own order is one contiguous run
    assert L.merge_loops(kt + rows_ + cols) == [(64, 1)]
    assert L.dma_ops(a.offset((4, 0)), kt + rows_ + cols, 4, L.NPU_SHIM_DMA, "a") == \
        [(64, [1, 1, 1, 64], [0, 0, 0, 1])]


def test_dma_ops_factor_long_rows_and_unroll_extra_dims():
    ops = L.dma_ops(0, [(4096, 1)], 4, L.NPU_SHIM_DMA, "x")      # 4096 words > 1023
    assert ops == [(0, [1, 1, 8, 512], [0, 0, 512, 1])]
    ops = L.dma_ops(0, [(2, 100000), (3, 1000), (5, 10), (7, 3), (2, 1)], 4, L.NPU_SHIM_DMA, "x")
    assert len(ops) == 2 and ops[1][0] == 100000


def test_dma_rule_violations_name_operand_and_rule():
    with pytest.raises(LayoutError, match=r"'w': DMA pattern .* stride 2000000 words > 1048576"):
        L.dma_ops(0, [(2, 2_000_000), (8, 1)], 4, L.NPU_SHIM_DMA, "w")
    with pytest.raises(LayoutError, match=r"'b': .* innermost transfer 3 x 2 bytes is not a multiple of 4 bytes"):
        L.dma_ops(0, [(5, 16), (3, 1)], 2, L.NPU_SHIM_DMA, "b")


SPEC = """\
name: op
params: {M: 8, N: 16, K: 16}
inputs:
  x: {shape: [M, K], dtype: float32}
  w: {shape: [N, K], dtype: float32, layout: LAYOUT}
graph:
  - {op: matmul, inputs: [x, w], output: y, transpose_b: true}
outputs: [y]
targets: TARGETS
"""


def load(layout, targets="[tir-cpu, mlir-aie]"):
    return parse_spec(SPEC.replace("LAYOUT", layout).replace("TARGETS", targets), "specs/op.yaml")


SIX_LEVELS = "{dims: [[[128, 2], [32, 2], [4, 4]], [[64, 2], [16, 2], [1, 4]]]}"


@pytest.mark.parametrize("layout,message,valid", [
    ("{tiled: [3, 8]}", "tile 3x8 does not divide shape [16, 16] (padding is not supported)", "dividing 16"),
    ("{dims: [[[16, 16]], [[1, 8], [1, 2]]]}", "not a bijection onto its buffer", "exactly once"),
    ("{dims: [[[16, 8]], [[1, 16]]]}", "covers [8, 16] but the tensor is [16, 16]", "equals its size"),
    ("{tiles: [4, 4]}", "unknown layout", "row_major, col_major"),
    (SIX_LEVELS, "layout of 'w' needs 6 DMA dimensions after merging", "at most 4"),
])
def test_bad_layouts_get_clear_errors(layout, message, valid):
    with pytest.raises(LayoutError) as info:
        load(layout)
    e = info.value
    assert (e.path, e.line, e.field) == ("specs/op.yaml", 5, "inputs.w.layout"), str(e)
    assert message in e.message and valid in (e.valid or ""), str(e)


def test_dma_limits_apply_only_to_targets_that_have_them():
    assert load(SIX_LEVELS, "[tir-cpu]").variants[0].graph.tensors["w"].layout.rank == 2
    with pytest.raises(LayoutError, match=r"\(target mlir-aie\)"):
        load(SIX_LEVELS, "[mlir-aie]")


def test_layout_params_substitute():
    spec = parse_spec(textwrap.dedent(SPEC.replace("params: {M: 8, N: 16, K: 16}", "params: {M: 8, N: 16, K: 16, r: [4, 8]}")
                                      .replace("LAYOUT", "{tiled: [$r, 8]}").replace("TARGETS", "[tir-cpu]")), "s.yaml")
    assert [v.graph.tensors["w"].layout.form for v in spec.variants] == ["tiled[4,8]", "tiled[8,8]"]
