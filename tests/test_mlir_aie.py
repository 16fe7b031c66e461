"""mlir-aie target: every shipped design renders and passes the strict check; emulated
validation passes; planted bugs in any DMA pattern, a re-tiling or a template are
caught; the report says honestly what ran."""
from __future__ import annotations

import json
import re
import shutil

import pytest

from fusebuild.run import validate as V
from fusebuild.backends import get_backend
from fusebuild.backends.mlir_aie import aieparse
from fusebuild.backends.mlir_aie.backend import aiecc_flags
from fusebuild.errors import FusebuildError
from fusebuild.backends.templating import TEMPLATES
from fusebuild.spec import load_spec, parse_spec

from conftest import REPO, gemm_spec, render as render_spec

AIE = get_backend("mlir-aie")
SHIPPED = [(p.stem, v) for p in sorted((REPO / "specs").glob("*.yaml")) for v in load_spec(p).variants
           if "mlir-aie" in v.targets]


def variant(text=None, hints=""):
    spec = parse_spec((text or gemm_spec()) + hints, "specs/small.yaml")
    return spec.variants[-1]


def render(v, hints=None):
    return render_spec(v, "mlir-aie", hints=hints).files["design.mlir"]


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


def test_gemm_family_and_swiglu_ship_mlir_aie():
    assert {s for s, _ in SHIPPED} >= {"gemm", "gemm_bias_relu", "gemm_bias_silu", "gemm_bias_gelu", "swiglu_prefill",
                                       "gemm_tiled_weight"}


@pytest.mark.parametrize("name,v", SHIPPED, ids=[f"{s}/{v.name}" for s, v in SHIPPED])
def test_shipped_designs_render_and_pass_the_structural_check(name, v):
    text = render(v)
    summary = aieparse.check(aieparse.parse(text))
    assert text.count("aie.device(npu2)") == 1 and summary["cores"] >= 1
    if name == "swiglu_prefill":   # one design: gate, up and the down-projection column cores
        assert summary["cores"] == 10 and "@h_L1L1" in text and "@act_L1L1" in text


def test_small_gemm_emulates_and_matches_torch(tmp_path):
    v = variant()
    assert emulate_text(tmp_path, v, render(v))["ok"]


def test_swiglu_small_emulates(tmp_path):
    text = (REPO / "specs" / "swiglu_prefill.yaml").read_text()
    text = text.replace("M: [64, 256]", "M: 16").replace("E: 512", "E: 64").replace("H: 2048", "H: 128")
    v = parse_spec(text, "specs/swiglu_prefill.yaml").variants[0]
    assert emulate_text(tmp_path, v, render(v))["ok"]


def mutations(text):
    """Every significant number of every dma_memcpy_nd and dimensionsToStream, nudged."""
    lines = text.splitlines()
    for no, line in enumerate(lines):
        m = re.search(r"dma_memcpy_nd\((%arg\d+)\[([^\]]*)\]\[([^\]]*)\]\[([^\]]*)\]", line)
        if m:
            offs, sizes, strides = ([int(x) for x in g.split(",")] for g in m.groups()[1:])
            variants = [("offset", 3, offs[3] + 1)]
            variants += [("size", d, sizes[d] - 1) for d in range(4) if sizes[d] > 1]
            variants += [("stride", d, strides[d] + 1) for d in range(4) if sizes[d] > 1]
            for what, d, value in variants:
                vals = {"offset": offs, "size": sizes, "stride": strides}[what][:]
                vals[d] = value
                new = {"offset": (vals, sizes, strides), "size": (offs, vals, strides),
                       "stride": (offs, sizes, vals)}[what]
                body = "".join("[" + ", ".join(map(str, g)) + "]" for g in new)
                yield f"line {no + 1} {what} {d}", "\n".join(
                    lines[:no] + [line.replace(m.group(0), f"dma_memcpy_nd({m.group(1)}{body}")] + lines[no + 1:])
        for dm in re.finditer(r"<size = (\d+), stride = (\d+)>", line):
            if int(dm.group(1)) > 1:
                new = line[:dm.start()] + f"<size = {dm.group(1)}, stride = {int(dm.group(2)) + 1}>" + line[dm.end():]
                yield f"line {no + 1} dims", "\n".join(lines[:no] + [new] + lines[no + 1:])


@pytest.mark.parametrize("spec", ["small", "tiled"])
def test_every_planted_pattern_bug_is_caught(tmp_path, spec):
    text = gemm_spec() if spec == "small" else gemm_spec().replace(
        "w: {shape: [N, K], dtype: float32}", "w: {shape: [N, K], dtype: float32, layout: {tiled: [8, 8]}}")
    v = variant(text)
    good = render(v)
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
    v = variant()
    assert caught(tmp_path, v, render(v))


def test_template_typo_fails_the_structural_check(tmp_path, monkeypatch):
    override(tmp_path, monkeypatch, "core.j2", "aie.objectfifo.release", "aie.objectfifo.relase")
    v = variant()
    with pytest.raises(aieparse.AieCheckError, match=r"design.mlir:\d+: unexpected line in for body"):
        aieparse.parse(render(v))


@pytest.mark.parametrize("old,new,message", [
    ("aie.tile(0, 2)", "aie.tile(9, 2)", "outside npu2"),
    ("(Consume, 1)\n", "(Produce, 1)\n", "does not hold"),
    ("{stack_size", "{stack_size", None),
])
def test_structural_rules(old, new, message):
    text = render(variant())
    if message is None:
        aieparse.check(aieparse.parse(text))
        return
    with pytest.raises(aieparse.AieCheckError, match=message):
        aieparse.check(aieparse.parse(text.replace(old, new, 1)))


def test_layout_change_changes_every_backend_and_only_the_dma_lines():
    base = gemm_spec()
    tiled = base.replace("w: {shape: [N, K], dtype: float32}",
                         "w: {shape: [N, K], dtype: float32, layout: {tiled: [8, 8]}}")
    a, b = variant(base), variant(tiled)
    for target in ("tir-cpu", "mlir-aie"):
        ta = render_spec(a, target, hints={}).files
        tb = render_spec(b, target, hints={}).files
        assert ta != tb, target
    ra, rb = render(a).splitlines(), render(b).splitlines()
    changed = [(x, y) for x, y in zip(ra, rb) if x != y]
    assert len(ra) == len(rb) and changed
    for x, y in changed:   # only w's transfers and its mem tile FIFOs
        assert ("dma_memcpy_nd(%arg1" in y) or ("@w_L" in y), y


def test_npu1_is_selectable_by_hint():
    v = variant()
    assert "aie.device(npu1)" in render(v, {"npu": 1})
    aieparse.check(aieparse.parse(render(v, {"npu": 1})))


def test_aiecc_flags_by_driver():
    assert "--aie-generate-xclbin" in aiecc_flags("usage: aiecc.py [--aie-generate-xclbin] ...")
    assert "--get-xclbin" in aiecc_flags("aiecc [--get-xclbin] [--get-npu-insts]")
    with pytest.raises(RuntimeError):
        aiecc_flags("something else")


def test_doit_build_reports_emulated_not_pass(project):
    project.spec("small", gemm_spec().replace("seed: 3", "seed: 3\ntargets: [mlir-aie]"))
    result = project.doit("build", check=0)
    assert "emulated" in result.text
    report = json.loads((project.root / "out/small/M8_N32_K16/mlir-aie/validation.json").read_text())
    assert report["status"] == "emulated" and "no xclbin" in report["reason"]
    assert report["execution"]["structural-check"] == "pass"
    assert report["execution"]["aiecc"].startswith("not-run: aiecc")
    assert report["execution"]["npu-run"].startswith("not-run")
    assert report["max_abs"] is not None
    assert project.doit("build", check=0).ran == []


def test_doit_build_fails_on_a_planted_template_bug(project, tmp_path):
    root = tmp_path / "over"
    shutil.copytree(TEMPLATES / "aie", root / "aie")
    fifos = root / "aie" / "fifos.j2"   # swap the two outer re-tiling dimensions: well formed, wrong data
    fifos.write_text(fifos.read_text().replace("{% for s, st in f.dims %}",
                                               "{% for s, st in f.dims[1:2] + f.dims[:1] + f.dims[2:] %}"))
    project.spec("small", gemm_spec().replace("seed: 3", "seed: 3\ntargets: [mlir-aie]"))
    result = project.doit("build", env={"FUSEBUILD_TEMPLATE_OVERRIDES": str(root)})
    assert result.code != 0, result.text
    report = json.loads((project.root / "out/small/M8_N32_K16/mlir-aie/validation.json").read_text())
    assert report["status"] == "fail" and report["ratio"] > 1, result.text
    assert "validate:small/M8_N32_K16/mlir-aie" in result.ran
