"""Shape fuzz on the CPU targets: random M, N, K in [1, 300] (1 and primes included), every
epilogue, both weight layouts, each built through the backend interface and validated
against torch. Seeded, so a failure names a shape that reproduces."""
from __future__ import annotations

import random

import pytest
from backend_build import validate, variant_of

from fusebuild.backends import get_backend

EPILOGUES = ["", "relu", "silu", "sigmoid", "gelu", "{gelu: {approximate: tanh}}", "{add: bias}",
             "{add: bias}, silu", "{add: bias}, {gelu: {approximate: tanh}}", "{mul: r}", "{sub: r}, relu",
             "{add: bias}, {add: r}"]
EDGE = [1, 2, 3, 5, 7, 13, 31, 61, 97, 127, 211, 257, 293, 300]
SHAPES_PER_TARGET = 24

SPEC = """\
name: fuzz
inputs:
  x: {{shape: [{m}, {k}], dtype: float32}}
  w: {{shape: {w}, dtype: float32}}
  bias: {{shape: [{n}], dtype: float32}}
  r: {{shape: [{m}, {n}], dtype: float32}}
graph:
  - {{op: matmul, inputs: [x, w], output: y, transpose_b: {tb}, epilogue: [{epilogue}]}}
outputs: [y]
targets: [{target}]
seed: {seed}
"""


def cases(target: str) -> list:
    """Seeded shapes: each epilogue at least once, sizes from the edge list or uniform in [1, 300]."""
    rng = random.Random(f"fuzz-{target}")
    out = []
    for i in range(SHAPES_PER_TARGET):
        m, n, k = (rng.choice(EDGE) if rng.random() < 0.5 else rng.randint(1, 300) for _ in range(3))
        out.append((m, n, k, rng.random() < 0.6, EPILOGUES[i % len(EPILOGUES)]))
    out[0] = (1, 1, 1, True, out[0][4])        # the smallest GEMM there is
    return out


@pytest.mark.slow
@pytest.mark.parametrize("target", ["tir-cpu", "mlir-cpu"])
def test_shape_fuzz_validates_against_torch(tmp_path, target):
    if not get_backend(target).toolchain().available:
        pytest.skip(f"{target}: toolchain missing")
    bad = []
    for i, (m, n, k, tb, epilogue) in enumerate(cases(target)):
        text = SPEC.format(m=m, n=n, k=k, w=f"[{n}, {k}]" if tb else f"[{k}, {n}]", tb=str(tb).lower(),
                           epilogue=epilogue, target=target, seed=i)
        v = variant_of(text, target)
        try:
            result = validate(v, target, tmp_path / f"case{i}")
        except Exception as err:  # noqa: BLE001 - a crash is a finding: name the shape
            bad.append(f"{m}x{n}x{k} transpose_b={tb} [{epilogue}]: {type(err).__name__}: {str(err)[:300]}")
            continue
        if not result.ok:
            bad.append(f"{m}x{n}x{k} transpose_b={tb} [{epilogue}]: {result.outputs}")
    assert not bad, "\n".join(bad)


def test_fuzz_cases_cover_every_epilogue_and_edge_sizes():
    for target in ("tir-cpu", "mlir-cpu"):
        got = cases(target)
        assert {c[4] for c in got} == set(EPILOGUES)
        sizes = {s for c in got for s in c[:3]}
        assert 1 in sizes and sizes & {7, 13, 31, 61, 97, 127, 211, 257, 293}
        assert {c[3] for c in got} == {True, False}
