"""Hostile specs (issue 15, items 1 and 2): each gets its one `file:line: field: message`
error, in bounded time and memory, and never takes the specs beside it down. The inputs are
the exact ones the issue reports; the error texts are pinned."""
from __future__ import annotations

import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from conftest import gemm_spec

from fusebuild.errors import SpecError
from fusebuild.plan.project import load_specs, spec_task_name
from fusebuild.spec import limits, load_spec, parse_spec

REPO = Path(__file__).resolve().parent.parent

GOOD = gemm_spec("op").replace("seed: 3\n", "")      # 12 lines; tests append at line 13


def chain_last_first(n: int) -> str:
    """n relu nodes t0..t{n-1}, each reading the one before, listed last-first."""
    nodes = "".join(f"  - {{op: relu, inputs: [{f't{i - 1}' if i else 'x'}], output: t{i}}}\n"
                    for i in reversed(range(n)))
    return f"name: op\ninputs:\n  x: {{shape: [4], dtype: float32}}\ngraph:\n{nodes}outputs: [t{n - 1}]\n"


def alias_bomb(levels: int = 9) -> str:
    rows = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    rows += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return GOOD + "description:\n" + "".join(f"  {r}\n" for r in rows)


# (what, spec text, line, field, exact message, exact valid): every hostile input the issue names
HOSTILE = [
    ("unhashable op", GOOD.replace("op: matmul", "op: [matmul]"), 11, "graph[0].op",
     "unknown op ['matmul']", "add, gelu, matmul, mul, relu, sigmoid, silu, sub"),
    ("5000-digit integer", GOOD.replace("N: 32", "N: " + "9" * 5000), 4, "params.N",
     "an integer literal of 5000 digits", "integers of at most 20 digits"),
    ("YAML nested 500 deep", GOOD + "description: " + "[" * 500 + "]" * 500 + "\n", 13, None,
     "values nested more than 32 deep", "at most 32 levels of mappings and lists"),
    ("30,000-term shape expression",
     GOOD.replace("x: {shape: [M, K]", "x: {shape: ['" + "+".join(["M"] * 30000) + "', K]"),
     7, "inputs.x.shape", "a shape expression of 59999 characters", "expressions of at most 256 characters"),
    ("3,000 nodes listed last-first", chain_last_first(3000), 5, "graph",
     "the graph has more than 256 nodes (epilogue steps count as nodes)", "at most 256 nodes"),
    ("layout on 10^10 elements", GOOD.replace("w: {shape: [N, K], dtype: float32}",
                                              "w: {shape: [100000, 100000], dtype: float32, layout: {tiled: [8, 8]}}"),
     8, "inputs.w.shape", "shape [100000, 100000] has 10000000000 elements, beyond int32 index arithmetic",
     "at most 2147483647 elements per tensor"),
    ("alias bomb", alias_bomb(), 19, None,
     "the document expands to more than 100000 values (YAML aliases are expanded where they are used)",
     "at most 100000 values after alias expansion"),
    ("recursive alias", GOOD + "description: &d [*d]\n", 13, None,
     "recursive YAML alias (a value that contains itself)", "aliases of values defined before and outside them"),
    ("10^6 variants from three unused parameter lists", GOOD.replace("  N: 32\n", "  N: 32\n" + "".join(
        f"  {p}: [{', '.join(str(i) for i in range(1, 101))}]\n" for p in "PQR")), 2, "params",
     "the parameter lists expand to 2000000 variants", "at most 256 variants per spec"),
    ("dimensions beyond int32", GOOD.replace("M: [4, 8]", "M: [70000]").replace("K: 16", "K: 70000"), 7,
     "inputs.x.shape", "shape [70000, 70000] has 4900000000 elements, beyond int32 index arithmetic",
     "at most 2147483647 elements per tensor"),
    ("seed beyond 64 bits", GOOD + "seed: 18446744073709551616\n", 13, "seed",
     "seed 18446744073709551616 is out of range", "an integer in [0, 18446744073709551615]"),
    ("negative seed", GOOD + "seed: -1\n", 13, "seed", "seed -1 is out of range",
     "an integer in [0, 18446744073709551615]"),
    ("atol .inf", GOOD + "tolerance: {float32: {atol: .inf}}\n", 13, "tolerance.float32.atol",
     "atol .inf is not a finite, non-negative number", "finite numbers: 0 <= atol <= 1.0, 0 <= rtol <= 0.1"),
    ("rtol .nan", GOOD + "tolerance: {float32: {rtol: .nan}}\n", 13, "tolerance.float32.rtol",
     "rtol .nan is not a finite, non-negative number", "finite numbers: 0 <= atol <= 1.0, 0 <= rtol <= 0.1"),
    ("absurd rtol", GOOD + "tolerance: {float32: {rtol: 1}}\n", 13, "tolerance.float32.rtol",
     "rtol 1 is not allowed: it would pass outputs that are plainly wrong",
     "finite numbers: 0 <= atol <= 1.0, 0 <= rtol <= 0.1"),
    ("tolerance not a number", GOOD + "tolerance: {float32: {atol: small}}\n", 13, "tolerance.float32.atol",
     "atol must be a number, got 'small'", "finite numbers: 0 <= atol <= 1.0, 0 <= rtol <= 0.1"),
    ("fused chain too deep to render", GOOD.replace("epilogue: [{add: b}, silu]", "epilogue: [{add: b}, "
                                                    + ", ".join(["{gelu: {approximate: tanh}}"] * 10) + "]"),
     11, "graph", "the elementwise chain fused into 'y' is 11 ops deep and renders 19531250 operand reads",
     "at most 64 ops and 4096 reads per fused store: split the chain "
     "(an intermediate that is also an output is not fused)"),
    ("trailing newline in a name", GOOD.replace("name: op", 'name: "t\\n"'), 1, "name",
     "'t\\n' is not a plain name (it could escape out/ or break generated code)",
     "letters, digits and _ , not starting with a digit"),
    ("name longer than a file name", GOOD.replace("name: op", "name: " + "a" * 256), 1, "name",
     "'aaaaaaaaaaaaaaaaaaaaaaaaaaa...aaaaaaaaaaaaaaaaaaaaaaaaaaaa' is longer than 64 characters",
     "a plain name of at most 64 characters"),
    ("variant name longer than a file name", GOOD.replace("  N: 32\n", "  N: 32\n" + "".join(
        f"  p{i}: {'w' * 60}{i}\n" for i in range(5))), 2, "params",
     None, "parameters whose variant name stays within 255 bytes"),
    ("huge micro_n hint", GOOD + "schedule: {tir-cpu: {micro_n: 1000000}}\n", 13, "schedule.tir-cpu.micro_n",
     "hint micro_n=1000000 is out of range", "an integer in [1, 256]"),
    ("NUL byte", GOOD.replace("N: 32", "N: 32\x00"), 4, None, "a NUL byte", "a text file"),
]


@pytest.mark.parametrize("what,text,line,field,message,valid", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_spec_gets_one_bounded_error(what, text, line, field, message, valid):
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(SpecError) as info:
        parse_spec(text, "specs/h.yaml")
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    e = info.value
    assert (e.path, e.line, e.field) == ("specs/h.yaml", line, field), str(e)
    if message is not None:
        assert e.message == message, str(e)
    assert e.valid == valid, str(e)
    assert str(e).startswith(f"specs/h.yaml:{line}: "), str(e)
    assert seconds < 5 and peak < 200 << 20, (seconds, peak)
    assert len(str(e)) < 600, str(e)              # an alias bomb is never expanded into a message


def test_variant_name_limit_names_the_variant():
    e = pytest.raises(SpecError, parse_spec, HOSTILE[19][1], "specs/h.yaml").value
    assert e.message.startswith("the variant name 'M4_N32_www") and e.message.endswith(
        "4_K16' is 320 bytes, too long for a folder name"), e.message


def test_a_16k_tiled_weight_checks_without_allocating():
    """The layout bijection is checked arithmetically: no index array of the tensor's size."""
    text = GOOD.replace("w: {shape: [N, K], dtype: float32}", "w: {shape: [16384, 16384], dtype: float32, "
                        "layout: {tiled: [64, 64]}}").replace("N: 32", "N: 16384").replace("K: 16", "K: 16384")
    tracemalloc.start()
    spec = parse_spec(text, "specs/h.yaml")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert spec.variants[0].graph.tensors["w"].layout.form == "tiled[64,64]"
    assert peak < 20 << 20, peak


def test_readme_tolerance_example_is_a_number():
    """YAML 1.1 reads 1e-3 as a string; specs read it as a float (as YAML 1.2 does)."""
    v = parse_spec(GOOD + "tolerance: {float32: {atol: 1e-3, rtol: 1e-4}}\n", "specs/t.yaml").variants[0]
    assert v.tolerance == {"float32": {"atol": 1e-3, "rtol": 1e-4}}


def test_limits_are_far_above_what_shipped_specs_use():
    for path in sorted((REPO / "specs").glob("*.yaml")):
        spec = load_spec(path)
        assert len(spec.variants) <= limits.MAX_VARIANTS
        assert path.stat().st_size < limits.MAX_FILE_BYTES


def test_non_utf8_file_names_its_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_bytes(GOOD.replace("N: 32", "N: 32  # caf\xe9").encode("latin-1"))
    e = pytest.raises(SpecError, load_spec, path).value
    offset = GOOD.index("N: 32") + len("N: 32  # caf")
    assert (e.line, e.message) == (4, f"not UTF-8: byte 0xe9 at byte offset {offset}"), str(e)


def test_control_character_in_yaml_names_its_line(tmp_path):
    e = pytest.raises(SpecError, parse_spec, GOOD.replace("N: 32", "N: \x1b[31m8"), "specs/h.yaml").value
    assert (e.line, e.message) == (4, "YAML: control characters are not allowed: '\\x1b'"), str(e)


PWN = "f\n@__import__('os').system('touch PWNED')\ndef f(): pass\n#.yaml"


def test_spec_file_name_with_control_characters_is_refused(tmp_path):
    path = tmp_path / PWN
    path.write_text(GOOD)
    e = pytest.raises(SpecError, load_spec, path).value
    assert (e.line, e.field) == (1, "file name")
    assert e.message == ("the spec's file name \"f\\n@__import__('os').system...NED')\\ndef f(): pass\\n#.yaml\" "
                         "holds control characters")
    assert "\n" not in str(e)


def test_a_fifo_is_not_read(tmp_path):
    import os
    os.mkfifo(tmp_path / "pipe.yaml")
    e = pytest.raises(SpecError, load_spec, tmp_path / "pipe.yaml").value
    assert e.message == "not a regular file"


def test_one_bad_spec_never_takes_the_others_down(tmp_path):
    """load_specs: every hostile file above beside a good one; each gets its own error."""
    for i, (_what, text, *_rest) in enumerate(HOSTILE):
        (tmp_path / f"h{i:02d}.yaml").write_text(text.replace("name: op", f"name: op{i}"))
    (tmp_path / "good.yaml").write_text(GOOD.replace("name: op", "name: good"))
    (tmp_path / "good.yml").write_text(GOOD.replace("name: op", "name: good").replace("op: matmul", "op: [x]"))
    start = time.perf_counter()
    specs, errors = load_specs(tmp_path)
    assert time.perf_counter() - start < 30
    assert [s.name for s in specs] == ["good"]
    assert len(errors) == len(HOSTILE) + 1
    for path, err in errors:
        assert isinstance(err, SpecError) and err.path == str(path) and err.line, (path, err)
    names = [spec_task_name(p) for p, _ in errors]
    assert len(set(names)) == len(names) and "good.yml" in names


def test_task_names_of_broken_specs_are_unique_and_printable():
    assert spec_task_name("specs/good.yml") == "good.yml"
    assert spec_task_name("specs/good.yaml") == "good.yaml"
    assert spec_task_name(f"specs/{PWN}") == "f\\n@__import__('os').system('touch PWNED')\\ndef f(): pass\\n#.yaml"


def test_check_never_prints_a_traceback_nor_a_raw_escape(tmp_path):
    paths = []
    for i, (_what, text, *_rest) in enumerate(HOSTILE):
        paths.append(tmp_path / f"h{i:02d}.yaml")
        paths[-1].write_text(text)
    esc = tmp_path / "esc.yaml"
    esc.write_text(GOOD.replace("name: op", 'name: "\\e]0;pwned\\a\\e[31m"'))
    proc = subprocess.run([sys.executable, "-m", "fusebuild", "check", *map(str, paths), str(esc)],
                          capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert "Traceback" not in out and "\x1b" not in out and "\x07" not in out
    assert f"{esc}:1: name: '\\x1b]0;pwned\\x07\\x1b[31m' is not a plain name" in out
    assert len(proc.stderr.strip().splitlines()) == len(paths) + 1     # one line per bad spec
