"""A dynamic mlir-cpu artifact calls the graph compiled at static sizes (rows.py); each of
those row functions takes the winner tuned for that static problem where one exists
(tune/select.py), so at M = 64 the dynamic artifact runs the static artifact's schedule. Also
a range whose minimum is above 1 (its row functions go below it)."""
from __future__ import annotations

import pytest
from backend_build import validate, variant_of

from fusebuild.backends import get_backend
from fusebuild.backends.base import RenderJob
from fusebuild.backends.mlir_cpu.rows import part_graph
from fusebuild.plan.artifacts import Artifact
from fusebuild.run.samples import run_samples
from fusebuild.tune import device as D
from fusebuild.tune.problem import Key, problem, problem_id
from fusebuild.tune.records import Records
from fusebuild.tune.select import describe_change, schedule
from fusebuild.tune.space import Space, config_id

SPEC = """\
name: dparts
params:
  M: {{dynamic: [{lo}, 64], validate: [33]}}
inputs:
  x: {{shape: [M, 32], dtype: float32}}
  w: {{shape: [48, 32], dtype: float32}}
  b: {{shape: [48], dtype: float32}}
graph:
  - {{op: matmul, inputs: [x, w], output: y, transpose_b: true, epilogue: [{{add: b}}, silu]}}
outputs: [y]
targets: [mlir-cpu]
"""
TILES = {"data_tiling": 0, "dist_m": 32, "dist_n": 16, "vec_m": 8, "vec_n": 16, "vec_k": 8}
BACKEND = get_backend("mlir-cpu")


def dynamic(tmp_path, lo=1) -> Artifact:
    return Artifact(variant_of(SPEC.format(lo=lo), "mlir-cpu"), "mlir-cpu", tmp_path / "out")


def static_key(a, rows: int) -> Key:
    """The key of the static problem at `rows` rows: what `fusebuild tune` files its winner under."""
    graph = part_graph(a.variant.graph, "M", rows)
    pinned = Space.of(BACKEND.info).pinned({})
    return Key.of(problem_id(problem(graph, pinned)), "mlir-cpu", D.name("mlir-cpu"), BACKEND.toolchain().versions)


def winner(key: Key, config: dict, date="2026-12-01T10:00:00Z") -> dict:
    return {"format": 1, "kind": "winner", "key": key.as_json(), "key_id": key.id, "candidate": config_id(config),
            "config": config, "date": date, "run": "r1", "median_s": 1e-3}


def backed(win: dict) -> list:
    """The winner with the `ok` measurement of its candidate that a winner needs to be used."""
    return [dict(win, kind="measurement", status="ok"), win]


def functions(mlir: str) -> dict:
    return {f.split("(", 1)[0]: f for f in mlir.split("func.func ")[1:]}


def test_a_row_function_takes_its_static_problems_winner(tmp_path):
    a = dynamic(tmp_path)
    path = tmp_path / "records.jsonl"
    env = {"FUSEBUILD_TUNING": str(path)}
    assert schedule(a, BACKEND, env).parts == {}
    Records(path).append(backed(winner(static_key(a, 64), TILES)))
    s = schedule(a, BACKEND, env)
    assert s.source == "default" and list(s.parts) == ["M=64"]
    assert s.parts["M=64"]["used"] == TILES and s.parts["M=64"]["tuned_on"].endswith("2026-12-01")
    assert s.key_fields()["parts"] == {"M=64": {"used": TILES, "tuned_on": s.parts["M=64"]["tuned_on"]}}
    assert s.report()["parts"]["M=64"]["candidate"] == config_id(TILES)
    mlir = BACKEND.render(RenderJob(a.variant.graph, s.used, "dparts", a.variant.name, s.part_hints()))
    funcs = functions(mlir.files["kernel.mlir"])
    tiled = sorted(name for name, f in funcs.items() if "distribution = [32, 16, 0]" in f)
    assert tiled == ["private @main_rows64"], tiled


def test_a_static_winner_with_other_module_flags_is_not_used_and_the_note_says_why(tmp_path):
    a = dynamic(tmp_path)
    path = tmp_path / "records.jsonl"
    Records(path).append(backed(winner(static_key(a, 32), {"data_tiling": 1, "ukernels": 1})))
    s = schedule(a, BACKEND, {"FUSEBUILD_TUNING": str(path)})
    assert s.parts == {}
    assert "M=32: tuned winner not used: its flags --iree-opt-data-tiling=true" in s.note, s.note
    assert "are not the artifact's --iree-opt-data-tiling=false" in s.note


def test_a_static_artifact_has_no_parts(tmp_path):
    v = variant_of(SPEC.format(lo=1).replace("{dynamic: [1, 64], validate: [33]}", "64"), "mlir-cpu")
    a = Artifact(v, "mlir-cpu", tmp_path / "out")
    path = tmp_path / "records.jsonl"
    Records(path).append(backed(winner(static_key(dynamic(tmp_path), 64), TILES)))
    s = schedule(a, BACKEND, {"FUSEBUILD_TUNING": str(path)})
    assert s.source == "tuned" and s.parts == {} and "parts" not in s.key_fields()


def test_why_names_the_parts_whose_static_winner_changed():
    base = {"schedule.source": '"default"', "schedule.used.data_tiling": "0"}
    one = dict(base, **{"schedule.parts.M=64.used.dist_m": "32", "schedule.parts.M=64.tuned_on": '"C, 2026-12-01"'})
    two = dict(one, **{"schedule.parts.M=64.used.dist_m": "64", "schedule.parts.M=8.used.dist_m": "8",
                       "schedule.parts.M=8.tuned_on": '"C, 2026-12-02"'})
    assert describe_change(base, one) == "tuning: M=64 now uses its static winner (tuned on C, 2026-12-01)"
    assert describe_change(one, two) == ("tuning: M=8 now uses its static winner (tuned on C, 2026-12-02), "
                                         "M=64 static winner changed (tuned on C, 2026-12-01)")
    assert describe_change(one, base) == "tuning: M=64 no longer has a static winner"
    assert describe_change(one, one) == ""


def need():
    if not BACKEND.toolchain().available:
        pytest.skip("mlir-cpu: toolchain missing")


@pytest.mark.parametrize("lo", [1, 5])
def test_the_parts_with_static_winners_compile_and_validate_at_every_size(tmp_path, lo):
    """With a winner for the 32-row problem (M = 33 runs it), and a range starting at 1 or
    above a part's rows (M in [5, 64]: M = 7 runs the 4-, 2- and 1-row parts)."""
    need()
    a = dynamic(tmp_path, lo)
    path = tmp_path / "records.jsonl"
    Records(path).append(backed(winner(static_key(a, 32), TILES)))
    s = schedule(a, BACKEND, {"FUSEBUILD_TUNING": str(path)})
    assert list(s.parts) == ["M=32"]
    a.dir.mkdir(parents=True)
    rendered = BACKEND.render(RenderJob(a.variant.graph, s.used, "dparts", a.variant.name, s.part_hints()))
    for name, text in rendered.files.items():
        (a.dir / name).write_text(text)
    BACKEND.compile(a.dir, a.dir)
    BACKEND.assemble(a.dir, a.dir)
    result = run_samples(a, BACKEND)
    sizes = [x["M"] for x in result.samples]
    assert result.ok and sizes[0] == lo and 33 in sizes and len(sizes) == 4, result.samples


def test_a_range_above_one_builds_without_tuning(tmp_path):
    need()
    result = validate(variant_of(SPEC.format(lo=5), "mlir-cpu"), "mlir-cpu", tmp_path)
    assert result.ok and result.samples[0]["M"] == 5
