"""mlir-aie target: the shipped designs render, pass the rules check and validate in
emulation (float32 and bfloat16); planted bugs in a DMA pattern or a template are caught;
the kernel sources match the design; the report says honestly what ran."""
from __future__ import annotations

import json
import re
import shutil

import pytest

from fusebuild.run import validate as V
from fusebuild.backends import get_backend
from fusebuild.backends.mlir_aie import aieparse, kernels, rules
from fusebuild.backends.mlir_aie.version import MLIR_AIE, aiecc_command, peano_command
from fusebuild.errors import FusebuildError
from fusebuild.backends.templating import TEMPLATES
from fusebuild.spec import load_spec, parse_spec

from conftest import REPO, gemm_spec, render as render_spec

AIE = get_backend("mlir-aie")
SHIPPED = [(p.stem, v) for p in sorted((REPO / "specs").glob("*.yaml")) for v in load_spec(p).variants
           if "mlir-aie" in v.targets]
SMALL = "schedule: {mlir-aie: {tile_m: 4, tile_n: 16, tile_k: 8, cores: 2}}\n"


def variant(text=None, hints="", dtype="float32"):
    text = (text or gemm_spec()).replace("float32", dtype)
    return parse_spec(text + "targets: [mlir-aie]\n" + hints, "specs/small.yaml").variants[-1]


def render(v, hints=None):
    files = render_spec(v, "mlir-aie", hints=hints).files
    return files


def emulate_text(tmp_path, v, text) -> dict:
    """Run the design text through the backend's emulated run; the compare result."""
    (tmp_path / "design.mlir").write_text(text)
    inputs = V.make_inputs(v.graph, v.seed)
    exp = V.expected(v.graph, inputs)
    out = AIE.run(tmp_path, v.graph, inputs)
    (name,) = v.graph.outputs
    return V.compare(out[name], exp.values[name], exp.bounds[name])


def caught(tmp_path, v, text) -> bool:
    try:
        return not emulate_text(tmp_path, v, text)["ok"]
    except FusebuildError:
        return True


def test_gemm_family_and_swiglu_ship_mlir_aie_in_float32_and_bfloat16():
    names = {(s, v.params.get("dtype")) for s, v in SHIPPED}
    for spec in ("gemm", "gemm_bias_relu", "gemm_bias_silu", "gemm_bias_gelu", "swiglu_prefill", "gemm_tiled_weight"):
        assert {(spec, "float32"), (spec, "bfloat16")} <= names, spec
    iron = [v for s, v in SHIPPED if s == "swiglu_prefill" and v.params == {"M": 256, "E": 512, "H": 2048,
                                                                             "dtype": "bfloat16"}]
    assert iron, "IRON's 256x512x2048 bf16 SwiGLU"


@pytest.mark.parametrize("name,v", SHIPPED, ids=[f"{s}/{v.name}" for s, v in SHIPPED])
def test_shipped_designs_render_and_pass_the_rules(name, v):
    files = render(v)
    summary = rules.check(aieparse.parse(files["design.mlir"]))
    design = files["design.mlir"]
    assert design.count("aie.device(npu2)") == 1 and summary["cores"] >= 1
    assert "aie.runtime_sequence(" in design and "aiex.runtime_sequence" not in design
    assert re.search(r'func\.func private @\w+\(.*\) attributes \{link_with = "kernels\.o"\}', design)
    for f in ("specs/", ".yaml", v.path):          # only identifiers and numbers reach the text
        assert f not in design and f not in files["kernels.cc"]
    declared = set(re.findall(r"func\.func private @(\w+)\(", design))
    defined = set(re.findall(r"^void (\w+)\(", files["kernels.cc"], re.M))
    assert declared == defined                     # every kernel the design links has its source
    if name == "swiglu_prefill":                   # gate and up paired core to core, h joined for the down GEMM
        assert "@act_L1L1_0" in design and re.search(r"aie\.objectfifo\.link \[@h_L1L2_0, @h_L1L2_1", design)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_small_gemm_emulates_and_matches_torch(tmp_path, dtype):
    v = variant(hints=SMALL, dtype=dtype)
    assert emulate_text(tmp_path, v, render(v)["design.mlir"])["ok"]


def test_swiglu_small_emulates_in_bfloat16(tmp_path):
    text = (REPO / "specs" / "swiglu_prefill.yaml").read_text()
    text = text.replace("M: [64, 256]", "M: 16").replace("E: 512", "E: 64").replace("H: 2048", "H: 128")
    v = next(v for v in parse_spec(text, "specs/swiglu_prefill.yaml").variants if "bfloat16" in v.name)
    assert emulate_text(tmp_path, v, render(v)["design.mlir"])["ok"]


def mutations(text):
    """Every significant number of every dma_memcpy_nd, nudged."""
    lines = text.splitlines()
    for no, line in enumerate(lines):
        m = re.search(r"dma_memcpy_nd\((%arg\d+)\[([^\]]*)\]\[([^\]]*)\]\[([^\]]*)\]", line)
        if not m:
            continue
        offs, sizes, strides = ([int(x) for x in g.split(",")] for g in m.groups()[1:])
        variants = [("offset", 3, offs[3] + 1)]
        variants += [("size", d, sizes[d] - 1) for d in range(4) if sizes[d] > 1]
        variants += [("stride", d, strides[d] + 1) for d in range(4) if sizes[d] > 1]
        for what, d, value in variants:
            vals = {"offset": offs, "size": sizes, "stride": strides}[what][:]
            vals[d] = value
            new = {"offset": (vals, sizes, strides), "size": (offs, vals, strides), "stride": (offs, sizes, vals)}[what]
            body = "".join("[" + ", ".join(map(str, g)) + "]" for g in new)
            yield f"line {no + 1} {what} {d}", "\n".join(
                lines[:no] + [line.replace(m.group(0), f"dma_memcpy_nd({m.group(1)}{body}")] + lines[no + 1:])


@pytest.mark.parametrize("spec", ["small", "tiled"])
def test_every_planted_pattern_bug_is_caught(tmp_path, spec):
    text = gemm_spec() if spec == "small" else gemm_spec().replace(
        "w: {shape: [N, K], dtype: float32}", "w: {shape: [N, K], dtype: float32, layout: {tiled: [8, 8]}}")
    v = variant(text, SMALL)
    good = render(v)["design.mlir"]
    assert emulate_text(tmp_path, v, good)["ok"]
    planted = list(mutations(good))
    assert len(planted) > 10
    missed = [what for what, bad in planted if not caught(tmp_path, v, bad)]
    assert not missed, missed


def override(tmp_path, monkeypatch, name, old, new):
    root = tmp_path / "over"
    shutil.copytree(TEMPLATES / "aie", root / "aie")
    path = root / "aie" / name
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))
    monkeypatch.setenv("FUSEBUILD_TEMPLATE_OVERRIDES", str(root))


def test_template_with_swapped_strides_fails_validation(tmp_path, monkeypatch):
    override(tmp_path, monkeypatch, "sequence.j2", "[{{ op.strides | join(\", \") }}]",
             "[{{ op.strides[:2] | join(\", \") }}, {{ op.strides[3] }}, {{ op.strides[2] }}]")
    v = variant(hints=SMALL)
    assert caught(tmp_path, v, render(v)["design.mlir"])


def test_template_typo_fails_the_parse(tmp_path, monkeypatch):
    override(tmp_path, monkeypatch, "core.j2", "aie.objectfifo.release", "aie.objectfifo.relase")
    v = variant(hints=SMALL)
    with pytest.raises(aieparse.AieCheckError, match=r"design.mlir:\d+: unexpected line in for body"):
        aieparse.parse(render(v)["design.mlir"])


def test_layout_change_changes_only_the_weight_transfers():
    base = gemm_spec()
    tiled = base.replace("w: {shape: [N, K], dtype: float32}", "w: {shape: [N, K], dtype: float32, layout: {tiled: [8, 8]}}")
    a, b = variant(base, SMALL), variant(tiled, SMALL)
    for target in ("tir-cpu", "mlir-aie"):
        ta = render_spec(a, target).files
        tb = render_spec(b, target).files
        assert ta != tb, target
    ra, rb = render(a)["design.mlir"].splitlines(), render(b)["design.mlir"].splitlines()
    changed = [(x, y) for x, y in zip(ra, rb) if x != y]
    assert len(ra) == len(rb) and changed
    for x, y in changed:   # only w's transfers
        assert "dma_memcpy_nd(%arg1" in y, y


def test_long_rows_are_factored_into_dma_dimensions(tmp_path):
    """A contiguous run longer than 1023 words (the d0 wrap field) is split over two dimensions."""
    v = load_spec(REPO / "tests" / "data" / "specs" / "long_rows.yaml").variants[0]
    design = render(v)["design.mlir"]
    ops = [[int(x) for x in re.findall(r"-?\d+", m)] for m in
           re.findall(r"dma_memcpy_nd\(%arg\d+(\[[^\]]*\]\[[^\]]*\]\[[^\]]*\])", design)]
    long = [op for op in ops if op[6] * op[7] > 1023 and op[10] == op[7] and op[11] == 1 and op[6] > 1]
    assert long, "no factored transfer"
    assert emulate_text(tmp_path, v, design)["ok"]


def test_npu1_is_selectable_by_hint():
    v = variant(hints="schedule: {mlir-aie: {npu: 1}}\n")
    design = render(v)["design.mlir"]
    assert "aie.device(npu1)" in design
    rules.check(aieparse.parse(design))


def test_pinned_tool_command_lines():
    assert MLIR_AIE == "v1.3.1"
    assert aiecc_command("aiecc", "/p", "design.mlir") == [
        "aiecc", "--no-compile-host", "--no-xchesscc", "--no-xbridge", "--peano=/p", "--aie-generate-xclbin",
        "--xclbin-name=final.xclbin", "--aie-generate-npu-insts", "--npu-insts-name=insts.bin", "design.mlir"]
    cmd = peano_command("/p", "/m", "npu2", "kernels.cc", "kernels.o")
    assert cmd[0] == "/p/bin/clang++" and "--target=aie2p-none-unknown-elf" in cmd and "-I/m/include" in cmd


def test_kernel_names_round_trip():
    assert kernels.parse(kernels.matmul("bfloat16", 16, 64, 32, True, 4)) == {
        "kind": "matmul", "dims": [16, 64, 32], "dtype": "bfloat16", "tb": True, "panels": 4}
    assert kernels.parse(kernels.epilogue("sub", (), "float32", 4, 16, "row", 32))["operand"] == "row"
    assert kernels.parse(kernels.elementwise("gelu", (("approximate", "tanh"),), "bfloat16", 2, 16))["attrs"] == {
        "approximate": "tanh"}
    with pytest.raises(ValueError, match="not a fusebuild AIE kernel name"):
        kernels.parse("matmul_bt_f64_1x2x3")


@pytest.mark.e2e
def test_doit_build_reports_emulated_and_the_steps(project):
    project.spec("small", gemm_spec().replace("seed: 3", "seed: 3\ntargets: [mlir-aie]\n" + SMALL))
    result = project.doit("build", check=0)
    assert "emulated" in result.text
    report = json.loads((project.root / "out/small/M8_N32_K16/mlir-aie/validation.json").read_text())
    ex = report["execution"]
    assert report["status"] == "emulated" and "no xclbin" in report["reason"]
    assert ex["render"].startswith("ran:") and ex["rules-check"] == "pass"
    assert ex["kernel-compile"].startswith("not-run: no Peano")
    assert ex["aiecc"].startswith("not-run: aiecc")
    assert ex["npu-run"].startswith("not-run") and ex["emulation"].startswith("ran:")
    assert ex["mlir-aie"] == "design written for mlir-aie v1.3.1"
    assert report["toolchain"]["mlir-aie-target"] == "v1.3.1"
    artifact = json.loads((project.root / "out/small/M8_N32_K16/mlir-aie/artifact.json").read_text())
    assert artifact["mlir_aie"] == "v1.3.1" and artifact["kernels"] == "kernels.cc"
    assert (project.root / "out/small/M8_N32_K16/mlir-aie/kernels.cc").exists()
    assert project.doit("build", check=0).ran == []


@pytest.mark.e2e
@pytest.mark.parametrize("old,new,stage", [
    # swapped inner strides: caught by the rules check at compile
    ("[{{ op.strides | join(\", \") }}]", "[{{ op.strides[:2] | join(\", \") }}, {{ op.strides[3] }}, "
                                         "{{ op.strides[2] }}]", "compile"),
    # every offset dropped: legal transfers of the wrong data, caught by validation
    ("[{{ op.offsets | join(\", \") }}]", "[0, 0, 0, 0]", "validate"),
])
def test_doit_build_fails_on_a_planted_template_bug(project, tmp_path, old, new, stage):
    root = tmp_path / "over"
    shutil.copytree(TEMPLATES / "aie", root / "aie")
    seq = root / "aie" / "sequence.j2"
    assert old in seq.read_text()
    seq.write_text(seq.read_text().replace(old, new))
    project.spec("small", gemm_spec().replace("seed: 3", "seed: 3\ntargets: [mlir-aie]\n" + SMALL))
    result = project.doit("build", env={"FUSEBUILD_TEMPLATE_OVERRIDES": str(root)})
    assert result.code != 0, result.text
    assert f"{stage}:small/M8_N32_K16/mlir-aie" in result.ran
    assert ("(rule npu-" in result.text) if stage == "compile" else ("FAIL y:" in result.text), result.text


@pytest.mark.e2e
@pytest.mark.slow
def test_compare_mode_builds_every_node_on_mlir_aie(project):
    """Separate/compare render each node alone: matmuls and the standalone elementwise nodes."""
    text = (REPO / "specs" / "swiglu_prefill.yaml").read_text()
    text = text.replace("M: [64, 256]", "M: 16").replace("E: 512", "E: 64").replace("H: 2048", "H: 128")
    only_bf16 = {r"targets: .*": "targets: [mlir-aie]", r"dtype: \[float32, bfloat16, float16\]": "dtype: bfloat16"}
    for pattern, repl in only_bf16.items():
        text = re.sub(pattern, repl, text)
    project.spec("swiglu", text)
    gelu = (REPO / "specs" / "gemm_bias_gelu.yaml").read_text().replace("M: [64]", "M: [8]")
    for pattern, repl in only_bf16.items():
        gelu = re.sub(pattern, repl, gelu)
    project.spec("gelu", gelu)
    result = project.doit("build", env={"FUSEBUILD_MODE": "compare"})
    assert result.code == 0, result.text
    reports = sorted((project.root / "out").glob("*/*/mlir-aie/validation.json"))
    assert len(reports) == 3
    for path in reports:
        report = json.loads(path.read_text())
        assert report["mode"] == "compare" and report["status"] == "emulated", path
        assert all(s["ok"] for s in report["steps"])
    nodes = project.root / "out/swiglu_prefill/M16_E64_H128_bfloat16/mlir-aie/nodes"
    assert {p.name for p in nodes.iterdir()} == {"gate", "up", "act", "h", "y"}
    assert "func.func private @ew_silu_bf16" in (nodes / "act" / "design.mlir").read_text()
