"""Target limits at load time (TargetInfo.load_check): every problem a target's hook reports is
a spec error with the line of what is at fault (a hint, an input, a node, else the target),
and `fusebuild check` reports it; tir-cpu's and mlir-cpu's own hooks."""
from __future__ import annotations

import dataclasses

import pytest

from fusebuild.backends import TARGETS, TargetInfo
from fusebuild.backends.limits import Limit
from fusebuild.backends.mlir_cpu.render import mixed_radix_problem
from fusebuild.cli import main as cli
from fusebuild.errors import SpecError
from fusebuild.ir.graph import Tensor
from fusebuild.ir.layouts import Layout
from fusebuild.spec import parse_spec

SPEC = """\
name: lim
params:
  M: {m}
inputs:
  x: {{shape: [M, 16], dtype: float32}}
  w: {{shape: [8, 16], dtype: float32}}
graph:
  - {{op: matmul, inputs: [x, w], output: y, transpose_b: true, epilogue: [relu]}}
outputs: [y]
targets: [fake]
schedule:
  fake: {{tile_m: 64}}
"""


def with_limits(limits) -> dict:
    fake = dataclasses.replace(TARGETS["tir-cpu"], name="fake", load_check=limits)
    return dict(TARGETS, fake=fake)


@pytest.mark.parametrize("problem,where", [
    (Limit("tile too big", "tile_m <= 32", hint="tile_m"), "specs/lim.yaml:12: schedule.fake.tile_m"),
    (Limit("x too wide", input="x"), "specs/lim.yaml:5: inputs.x.shape"),
    (Limit("cannot fuse relu", node="y"), "specs/lim.yaml:8: graph[0]"),
    ("out of cores", "specs/lim.yaml:10: targets"),
])
def test_a_limit_is_reported_at_the_line_at_fault(problem, where):
    with pytest.raises(SpecError) as err:
        parse_spec(SPEC.format(m=4), "specs/lim.yaml", with_limits(lambda graph, hints: [problem]))
    text = str(err.value)
    message = getattr(problem, "message", problem)
    assert text.startswith(f"{where}: target fake (variant M=4): {message}")
    if getattr(problem, "valid", ""):
        assert text.endswith(f"(valid: {problem.valid})")


def test_the_hook_sees_the_graph_and_the_spec_hints_and_may_be_a_module_path():
    seen = []

    def hook(graph, hints):
        seen.append((graph.tensors["x"].shape, hints))
        return []
    parse_spec(SPEC.format(m="[2, 4]"), "specs/lim.yaml", with_limits(hook))
    assert seen == [((2, 16), {"tile_m": 64}), ((4, 16), {"tile_m": 64})]
    info = TargetInfo("t", "m", ("float32",), load_check="fusebuild.backends.tir_cpu.limits:check")
    graph = parse_spec(SPEC.format(m="{dynamic: [1, 8]}").replace("[M, 16]", "[16, M]").replace("[8, 16]", "[8, M]"),
                       "specs/lim.yaml", with_limits(lambda graph, hints: [])).variants[0].graph
    assert [p.input for p in info.check(graph, {})] == ["x"]          # the module path resolves to tir-cpu's hook
    assert TargetInfo("t", "m", ()).check(graph, {}) == []


def test_tir_cpu_refuses_a_dynamic_size_that_is_not_rows(tmp_path, capsys):
    path = tmp_path / "xxt.yaml"
    path.write_text("""\
name: xxt
params:
  M: {dynamic: [1, 64]}
inputs:
  x: {shape: [M, 16], dtype: float32}
graph:
  - {op: matmul, inputs: [x, x], output: y, transpose_b: true}
outputs: [y]
targets: [tir-cpu]
""")
    assert cli(["check", str(path)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"{path}:7: graph[0]: target tir-cpu (variant M=1..64): dynamic M is dimension 1 of 'y' "
        "[64, 64]: tir-cpu takes a dynamic size only as the first dimension (the rows) of each tensor "
        "(valid: M as the first dimension ([M, K], [M, N], [M]))")
    # the same graph with a static M builds on tir-cpu (x @ x^T), and a dynamic K is an input's fault
    path.write_text(path.read_text().replace("{dynamic: [1, 64]}", "64"))
    assert cli(["check", str(path)]) == 0
    path.write_text(path.read_text().replace("M: 64", "M: {dynamic: [1, 64]}").replace("[M, 16]", "[16, M]"))
    assert cli(["check", str(path)]) == 1
    assert capsys.readouterr().err.startswith(f"{path}:5: inputs.x.shape: target tir-cpu (variant M=1..64): "
                                              "dynamic M is dimension 1 of 'x' [16, 64]")


def test_mlir_cpu_limit_names_a_layout_it_cannot_render():
    # strides 1 and 4 with bounds 2 and 2 skip offsets 2, 3: not a mixed-radix split (layouts.parse_layout
    # refuses such a layout before any target sees it; the hook guards the renderer on its own)
    x = Tensor("w", (4,), "float32", Layout((((4, 2), (1, 2)),), "custom"))
    message, valid = mixed_radix_problem("w", x)
    assert message == ("mlir-cpu renders layouts whose tile levels are a mixed-radix split of the buffer; the "
                       "layout of 'w' (custom) is not")
    assert valid.startswith("row_major, col_major")
    from fusebuild.backends.mlir_cpu.limits import check
    from fusebuild.ir.graph import Graph
    problems = check(Graph({"w": x}, ("w",), (), ()), {})
    assert [(p.input, p.message) for p in problems] == [("w", message)]
    ok = Tensor("w", (4, 4), "float32", Layout((((4, 4),), ((1, 4),)), "row_major"))
    assert mixed_radix_problem("w", ok) is None


def test_shipped_specs_check_clean_with_the_cpu_hooks(capsys):
    from conftest import REPO
    paths = sorted(str(p) for p in (REPO / "specs").glob("*.yaml"))
    assert cli(["check", *paths]) == 0, capsys.readouterr().err
