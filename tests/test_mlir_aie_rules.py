"""mlir-aie checker (rules.py): each rule, planted into a valid design, is caught with its exact
message (naming the construct and the rule), on the right line; the emulator refuses what the
checker refuses; the checker's facts and the generator's planning numbers agree.

The base design is data (tests/data/aie/base.mlir), so these tests do not depend on the generator."""
from __future__ import annotations

import re

import pytest

from fusebuild.backends.mlir_aie import aieparse, facts, rules
from fusebuild.backends.mlir_aie.plan import PLANNING

from conftest import REPO

BASE = (REPO / "tests" / "data" / "aie" / "base.mlir").read_text()
SHARED = "".join(f"    aie.objectfifo @s{i}(%tile_0_2, {{%tile_1_2}}, 1 : i32) : !aie.objectfifo<memref<16xf32>>\n"
                 for i in range(6))


def sub(old, new, text=BASE, count=1):
    assert old in text, old
    return text.replace(old, new, count)


def dims(fifo, tile, pattern):
    return sub(f"@{fifo}({tile}, {{", f"@{fifo}({tile} dimensionsToStream [{pattern}], {{")


def bf16_bias(stride="0, 0, 0, 1", offsets="0, 0, 0, 0"):
    text = sub("%arg2: memref<32xf32>", "%arg2: memref<64xbf16>")
    return sub("aiex.npu.dma_memcpy_nd(%arg2[0, 0, 0, 0][2, 1, 1, 32][0, 0, 0, 1]) {id = 2 : i64, metadata = @b_L3L2} "
               ": memref<32xf32>", f"aiex.npu.dma_memcpy_nd(%arg2[{offsets}][2, 1, 1, 32][{stride}]) {{id = 2 : i64, "
               f"metadata = @b_L3L2}} : memref<64xbf16>", text)


def drop_last_wait():
    head, _, tail = BASE.rpartition("      aiex.npu.dma_wait {symbol = @y_L2L3_1}\n")
    return head + tail


CASES = [  # (rule, planted design, line, message before " (rule ...")
    ("tile-in-device", sub("%tile_1_2 = aie.tile(1, 2)", "%tile_1_2 = aie.tile(9, 2)"), 16,
     "%tile_1_2 = aie.tile(9, 2): outside npu2 (8 columns, rows 0..5)"),
    ("core-on-compute-tile", sub("%core_1_2 = aie.core(%tile_1_2)", "%core_1_2 = aie.core(%tile_1_1)"), 63,
     "aie.core(%tile_1_1): not on a compute tile"),
    ("kernel-link-with", sub('link_with = "kernels.o"', 'link_with = "kernels.cc"'), 6,
     "func.func @add_f32_4x16_row32: link_with = 'kernels.cc' is not an object file"),
    ("fifo-ends", sub("@y_L2L3_1(%tile_1_1, {%tile_1_0}, 2 : i32)", "@y_L2L3_1(%tile_1_1, {%tile_1_0}, 0 : i32)"), 26,
     "@y_L2L3_1: depth 0"),
    ("no-shim-dims", dims("x_L3L2", "%tile_0_0", "<size = 4, stride = 8>, <size = 8, stride = 1>"), 17,
     "@x_L3L2: dimensionsToStream on shim tile (0, 0)"),
    ("link-point", sub("[@y_L1L2_1] -> [@y_L2L3_1]", "[@y_L1L2_1] -> [@y_L2L3_0]"), 30,
     "aie.objectfifo.link [@y_L1L2_1] -> [@y_L2L3_0]: @y_L2L3_0 is already in the link at line 29"),
    ("link-offsets", sub("([0, 32] [])", "([0, 16] [])"), 27,
     "aie.objectfifo.link [@x_L3L2, @b_L3L2] -> [@x_L2L1]: pieces of [32, 32] elements at offsets [0, 16] do not "
     "tile the 64-element object"),
    ("distribute-dims", dims("w_L3L2", "%tile_1_0", "<size = 32, stride = 8>, <size = 8, stride = 1>"), 28,
     "aie.objectfifo.link [@w_L3L2] -> [@w_L2L1, @w_L2L1_1]: input @w_L3L2 has dimensionsToStream"),
    ("bd-dims", dims("w_L2L1", "%tile_0_1", "<size = 2, stride = 64>, <size = 2, stride = 32>, <size = 2, stride = 16>, "
                                           "<size = 2, stride = 8>, <size = 8, stride = 1>"), 21,
     "@w_L2L1 dimensionsToStream on mem tile (0, 1): 5 dimensions, a mem tile BD has 4"),
    ("bd-dims", dims("y_L1L2_0", "%tile_0_2", "<size = 2, stride = 32>, <size = 2, stride = 16>, <size = 2, stride = 8>, "
                                             "<size = 8, stride = 1>"), 23,
     "@y_L1L2_0 dimensionsToStream on core tile (0, 2): 4 dimensions, a core tile BD has 3"),
    ("bd-dim-size", dims("y_L2L3_0", "%tile_0_1", "<size = 600, stride = 1>"), 24,
     "@y_L2L3_0 dimensionsToStream on mem tile (0, 1): <size = 600> > 512"),
    ("bd-dim-stride", dims("y_L2L3_0", "%tile_0_1", "<size = 4, stride = 70>, <size = 16, stride = 1>"), 24,
     "@y_L2L3_0 dimensionsToStream on mem tile (0, 1): <stride = 70> outside 1..min(524287, 64)"),
    ("bd-fields", dims("y_L1L2_0", "%tile_0_2", "<size = 300, stride = 1>"), 23,
     "@y_L1L2_0 dimensionsToStream on core tile (0, 2): <size = 300> is 300 in the 8-bit wrap field (max 255)"),
    ("bd-in-bounds", dims("y_L2L3_0", "%tile_0_1", "<size = 4, stride = 16>, <size = 16, stride = 2>"), 24,
     "@y_L2L3_0 dimensionsToStream on mem tile (0, 1): reaches element 78 of a 64-element object"),
    ("bd-inner-stride", sub("@y_L2L3_0(%tile_0_1, {%tile_0_0}, 2 : i32) : !aie.objectfifo<memref<64xf32>>",
                            "@y_L2L3_0(%tile_0_1 dimensionsToStream [<size = 2, stride = 1>, <size = 32, stride = 2>], "
                            "{%tile_0_0}, 2 : i32) : !aie.objectfifo<memref<64xbf16>>"), 24,
     "@y_L2L3_0 dimensionsToStream on mem tile (0, 1): innermost stride 2 for 16-bit elements"),
    ("bd-whole-object", dims("y_L2L3_0", "%tile_0_1", "<size = 4, stride = 16>, <size = 8, stride = 1>"), 24,
     "@y_L2L3_0 dimensionsToStream on mem tile (0, 1): moves 32 elements (8 innermost) per object of 64"),
    ("channels", sub("@w_L2L1_1(%tile_0_1, {%tile_1_2}", "@w_L2L1_1(%tile_0_1, {%tile_1_2, %tile_0_2}"), 22,
     "core tile (0, 2) (%tile_0_2): 3 input (S2MM) DMA channels for @x_L2L1, @w_L2L1, @w_L2L1_1; a core tile has 2"),
    ("bds", sub("@w_L2L1(%tile_0_1, {%tile_0_2}, 2 : i32)", "@w_L2L1(%tile_0_1, {%tile_0_2}, 9 : i32)",
                sub("@x_L2L1(%tile_0_1, {%tile_0_2, %tile_1_2}, 2 : i32)",
                    "@x_L2L1(%tile_0_1, {%tile_0_2, %tile_1_2}, 9 : i32)")), 23,
     "core tile (0, 2) (%tile_0_2): needs 20 buffer descriptors"),
    ("locks", sub("    aie.objectfifo.link [@x_L3L2", SHARED + "    aie.objectfifo.link [@x_L3L2"), 32,
     "core tile (0, 2) (%tile_0_2): needs 18 locks for 9 FIFO ends"),
    ("local-memory", sub("    aie.objectfifo @x_L3L2", '    %big = aie.buffer(%tile_0_2) {sym_name = "big"} : '
                                                     'memref<16000xf32>\n    aie.objectfifo @x_L3L2'), 15,
     "core tile (0, 2) (%tile_0_2): needs 67072 bytes of data memory (1024 stack + 66048 buffers and FIFO objects); "
     "it has 65536"),
    ("mem-tile-memory", sub("{%tile_0_0}, 2 : i32) : !aie.objectfifo<memref<64xf32>>",
                            "{%tile_0_0}, 2 : i32) : !aie.objectfifo<memref<70000xf32>>",
                            sub("{%tile_0_1}, 2 : i32) : !aie.objectfifo<memref<64xf32>>",
                                "{%tile_0_1}, 2 : i32) : !aie.objectfifo<memref<70000xf32>>")), 13,
     "mem tile (0, 1) (%tile_0_1): holds 562560 bytes of link objects; it has 524288"),
    ("core-ports", sub("%a_1_2_sv = aie.objectfifo.acquire @x_L2L1(Consume, 1)",
                       "%a_1_2_sv = aie.objectfifo.acquire @x_L2L1(Produce, 1)"), 72,
     "acquire @x_L2L1(Produce): on %tile_1_2: producer %tile_0_1, consumers %tile_0_2, %tile_1_2"),
    ("kernel-calls", sub("func.call @relu_f32_4x16(%out_0_2) : (memref<64xf32>)",
                         "func.call @relu_f32_4x16(%out_0_2) : (memref<32xf32>)"), 56,
     "func.call @relu_f32_4x16: types ['memref<32xf32>'], declared ['memref<64xf32>']"),
    ("npu-elem-width", sub("{id = 2 : i64, metadata = @b_L3L2} : memref<32xf32>",
                           "{id = 2 : i64, metadata = @b_L3L2} : memref<1xbf16>",
                           sub("%arg2: memref<32xf32>", "%arg2: memref<1xbf16>")), 97,
     "aiex.npu.dma_memcpy_nd @b_L3L2: buffer memref<1xbf16>"),
    ("npu-sizes", sub("[0, 0, 0, 0][1, 1, 4, 16][0, 0, 32, 1]", "[0, 0, 0, 0][1, 0, 4, 16][0, 0, 32, 1]"), 94,
     "aiex.npu.dma_memcpy_nd @y_L2L3_0: sizes [1, 0, 4, 16]"),
    ("npu-stride0", sub("[2, 1, 1, 32][0, 0, 0, 1]", "[1, 2, 1, 32][0, 0, 0, 1]"), 97,
     "aiex.npu.dma_memcpy_nd @b_L3L2: stride 0 on dimension 2 (size 2); sizes [1, 2, 1, 32] strides [0, 0, 0, 1]"),
    ("npu-granule", bf16_bias(stride="0, 0, 3, 1"), 97,
     "aiex.npu.dma_memcpy_nd @b_L3L2: stride 3 x 2 bytes is not whole 32-bit words"),
    ("npu-wraps", sub("[1, 2, 4, 8][0, 8, 16, 1]) {id = 1 : i64, metadata = @x_L3L2}",
                      "[1, 2, 4, 1100][0, 8, 16, 1]) {id = 1 : i64, metadata = @x_L3L2}"), 96,
     "aiex.npu.dma_memcpy_nd @x_L3L2: sizes [1, 2, 4, 1100]: d0 1100 words, d1 4 (max 1023)"),
    ("npu-offset", bf16_bias(offsets="0, 0, 0, 1"), 97,
     "aiex.npu.dma_memcpy_nd @b_L3L2: byte offset 2 is not 4-byte aligned"),
    ("npu-in-bounds", sub("%arg3[0, 0, 0, 0][1, 1, 4, 16]", "%arg3[0, 0, 0, 250][1, 1, 4, 16]"), 94,
     "aiex.npu.dma_memcpy_nd @y_L2L3_0: reaches element 361 of %arg3 (256 elements)"),
    ("npu-bd-ids", sub("{id = 1 : i64, metadata = @x_L3L2}", "{id = 16 : i64, metadata = @x_L3L2}"), 96,
     "aiex.npu.dma_memcpy_nd @x_L3L2: id 16 outside 0..15"),
    ("npu-bd-ids", sub("{id = 2 : i64, metadata = @b_L3L2}", "{id = 1 : i64, metadata = @b_L3L2}"), 97,
     "aiex.npu.dma_memcpy_nd @b_L3L2: id 1 on shim tile (0, 0) is still held by the transfer at line 96"),
    ("sequence", drop_last_wait(), 93, "aie.runtime_sequence @y_L2L3_1: no dma_wait after its last transfer"),
    ("sequence", sub("metadata = @x_L3L2}", "metadata = @x_L2L1}"), 96,
     "aiex.npu.dma_memcpy_nd @x_L2L1: the FIFO has no shim tile end"),
]


def test_base_design_is_valid():
    summary = rules.check(aieparse.parse(BASE))
    assert summary["cores"] == 2 and summary["dma_ops"] == 10


def test_every_rule_has_a_planted_case():
    assert {rule for rule, *_ in CASES} == set(rules.RULES)


@pytest.mark.parametrize("rule,text,line,message", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_planted_violation_is_caught_with_its_message(rule, text, line, message):
    with pytest.raises(aieparse.AieCheckError) as info:
        rules.check(aieparse.parse(text), "design.mlir")
    err = info.value
    r = rules.RULES[rule]
    assert err.message == f"{message} (rule {rule}: {r.statement} [{r.source}])"
    assert (err.path, err.line) == ("design.mlir", line)


def test_every_rule_cites_mlir_aie_source():
    for name, r in rules.RULES.items():
        assert re.search(r"\.(cpp|h|td)\b", r.source) or "fusebuild" in r.source, name


def test_emulator_refuses_what_the_checker_refuses(tmp_path):
    from fusebuild.backends import get_backend
    from fusebuild.spec import parse_spec
    spec = parse_spec("name: base\nparams: {M: 8, N: 32, K: 16}\ninputs:\n  x: {shape: [M, K], dtype: float32}\n"
                      "  w: {shape: [N, K], dtype: float32}\n  b: {shape: [N], dtype: float32}\ngraph:\n"
                      "  - {op: matmul, inputs: [x, w], output: y, transpose_b: true, epilogue: [{add: b}, relu]}\n"
                      "outputs: [y]\ntargets: [mlir-aie]\n", "base.yaml")
    v = spec.variants[0]
    from fusebuild.run import validate as V
    inputs = V.make_inputs(v.graph, 0)
    aie = get_backend("mlir-aie")
    (tmp_path / "design.mlir").write_text(BASE)
    assert V.compare(aie.run(tmp_path, v.graph, inputs)["y"], V.reference(v.graph, inputs)["y"], 1e-4, 1e-4)["ok"]
    (tmp_path / "design.mlir").write_text(CASES[0][1])
    with pytest.raises(aieparse.AieCheckError, match="rule tile-in-device"):
        aie.run(tmp_path, v.graph, inputs)


def test_checker_facts_and_generator_planning_agree():
    """Two tables on purpose (the checker must not read the generator's numbers); this keeps them in step."""
    assert PLANNING["columns"] == {d: f.value for d, f in facts.DEVICES.items()}
    assert PLANNING["channels"] == {k: f.value for k, f in facts.CHANNELS.items()}
    assert PLANNING["bds"] == {k: f.value for k, f in facts.BDS.items()}
    assert PLANNING["locks"] == {k: f.value for k, f in facts.LOCKS.items()}
    assert PLANNING["core_bytes"] == facts.LOCAL_MEMORY.value
    assert PLANNING["mem_bytes"] == facts.MEM_TILE_MEMORY.value
    assert PLANNING["mem_row"] == facts.MEM_ROW and max(PLANNING["core_rows"]) == facts.ROWS.value - 1


def test_checker_does_not_import_the_generator():
    source = (REPO / "fusebuild" / "backends" / "mlir_aie" / "rules.py").read_text()
    assert not re.search(r"from \.(plan|plan_gemm|plan_ew|design|fit|kernels)\b", source)
