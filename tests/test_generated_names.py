"""Tensor names that are valid spec identifiers build and validate on the CPU targets: Python
keywords, the TVMScript module `T`, loop and axis variable names, and names that spell what
the renderers generate (`y_acc` next to `y`, `%c0`, `dim_M`, `var_x`, copies of laid-out
inputs). tir-cpu reaches every tensor name through render.buffer (`t_<name>`), mlir-cpu
names every generated value `%<name>.<role>` (render.ssa); both are built through the
backend interface and validated as validation does."""
from __future__ import annotations

import pytest
from backend_build import validate, variant_of

from fusebuild.backends import get_backend
from fusebuild.run import validate as V
from fusebuild.status import Status

CPU = ["tir-cpu", "mlir-cpu"]

SPECS = {
    # the reported case: `lambda` as an input (tir-cpu: SyntaxError in `def main(lambda: ...`)
    "lambda": """
inputs:
  lambda: {shape: [16, 64], dtype: float32}
  w: {shape: [64, 64], dtype: float32}
graph:
  - {op: matmul, inputs: [lambda, w], output: y, transpose_b: true}
  - {op: relu, inputs: [y], output: z}
outputs: [z]
""",
    "keywords": """
inputs:
  lambda: {shape: [12, 32], dtype: float32}
  class: {shape: [24, 32], dtype: float32}
  None: {shape: [24], dtype: float32}
graph:
  - {op: matmul, inputs: [lambda, class], output: return, transpose_b: true, epilogue: [{add: None}, silu]}
  - {op: sigmoid, inputs: [return], output: if}
  - {op: mul, inputs: [if, return], output: def}
outputs: [return, def]
""",
    # `T` shadowed the TVMScript module; `main`, `range`, `max` are names TVMScript or Python know
    "tvmscript": """
inputs:
  T: {shape: [8, 16], dtype: float32}
  range: {shape: [16, 24], dtype: float32}
  max: {shape: [24], dtype: float32}
graph:
  - {op: matmul, inputs: [T, range], output: main, epilogue: [{add: max}]}
  - {op: relu, inputs: [main], output: float32}
outputs: [float32]
""",
    # the reported case: an intermediate `i` and an output `j` (matmul -> i, relu -> j)
    "i_j": """
inputs:
  x: {shape: [16, 32], dtype: float32}
  w: {shape: [24, 32], dtype: float32}
graph:
  - {op: matmul, inputs: [x, w], output: i, transpose_b: true}
  - {op: relu, inputs: [i], output: j}
outputs: [j]
""",
    "loop_vars": """
inputs:
  i: {shape: [8, 32], dtype: float32}
  j: {shape: [16, 32], dtype: float32}
  k: {shape: [16], dtype: float32}
  v0: {shape: [8, 16], dtype: float32}
graph:
  - {op: matmul, inputs: [i, j], output: vi, transpose_b: true, epilogue: [{add: k}]}
  - {op: gelu, inputs: [vi], output: vj}
  - {op: add, inputs: [vj, v0], output: i0}
  - {op: matmul, inputs: [i0, j], output: vk}
  - {op: sub, inputs: [vk, i], output: v1}
outputs: [v1, vi]
""",
    # names the renderers (or the epilogue sugar: y_mm) make from `y`: its accumulator, its
    # empty tensor, its body values (mlir-cpu: acc, in_x, out, v0 were block arguments and temporaries)
    "suffixes": """
inputs:
  x: {shape: [8, 32], dtype: float32}
  x_mm: {shape: [16, 32], dtype: float32}
  y_acc: {shape: [16], dtype: float32}
  acc_y: {shape: [8, 16], dtype: float32}
  acc: {shape: [16], dtype: float32}
  in_x: {shape: [8, 16], dtype: float32}
  y_mm: {shape: [16], dtype: float32}
graph:
  - {op: matmul, inputs: [x, x_mm], output: y, transpose_b: true, epilogue: [{add: y_acc}, {add: acc_y}, {add: y_mm}]}
  - {op: add, inputs: [y, acc], output: out}
  - {op: add, inputs: [out, in_x], output: v0}
  - {op: matmul, inputs: [x, x_mm], output: t_y, transpose_b: true, epilogue: [relu]}
  - {op: add, inputs: [t_y, v0], output: y_empty}
outputs: [y_empty, y]
""",
    # copies: a laid-out weight's row-major copy (tir-cpu: `rm_w`, block `w.rm_ew`) next to
    # tensors spelling it, and x @ x^T, whose B is read from a copy of x
    "copies": """
inputs:
  x: {shape: [8, 16], dtype: float32}
  w: {shape: [16, 16], dtype: float32, layout: {tiled: [4, 8]}}
  rm_w: {shape: [16], dtype: float32}
graph:
  - {op: matmul, inputs: [x, w], output: y, transpose_b: true, epilogue: [{add: rm_w}]}
  - {op: relu, inputs: [y], output: w_rm}
  - {op: matmul, inputs: [x, x], output: b_q, transpose_b: true}
  - {op: matmul, inputs: [x, x], output: q_b, transpose_b: true}
outputs: [w_rm, b_q, q_b]
""",
    # a dynamic M (tir-cpu: the rows/tiles dispatch, `dim_M`, `var_<name>` handles; mlir-cpu:
    # `main` split into row parts, once `%c0`, `%y_1`, `%dim_M`), with a laid-out weight
    "dynamic": """
params:
  M: {dynamic: [1, 40], validate: [5]}
inputs:
  x: {shape: [M, 24], dtype: float32}
  c0: {shape: [20, 24], dtype: float32, layout: {tiled: [4, 8]}}
  dim_M: {shape: [20], dtype: float32}
  var_x: {shape: [M, 20], dtype: float32}
graph:
  - {op: matmul, inputs: [x, c0], output: y, transpose_b: true, epilogue: [{add: dim_M}, silu]}
  - {op: add, inputs: [y, var_x], output: y_1}
  - {op: relu, inputs: [y_1], output: off_1}
outputs: [y, off_1]
""",
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(SPECS))
@pytest.mark.parametrize("target", CPU)
def test_spec_names_build_and_validate(tmp_path, target, case):
    if not get_backend(target).toolchain().available:
        pytest.skip(f"{target}: toolchain missing")
    v = variant_of(f"name: names_{case}\n{SPECS[case]}targets: [{target}]\nseed: 1\n", target)
    result = validate(v, target, tmp_path)
    status, reason = V.verdict(result.sets, result.ok, result.execution)
    assert status is Status.PASS, reason
    assert all(s["status"] == Status.PASS for s in result.samples), result.samples
