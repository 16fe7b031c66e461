"""tir-cpu's lowering: TVM's default TIR pipeline, with small scratch buffers kept on the stack.

TVM serves every allocation of 1 KiB or more with TVMBackendAllocWorkspace (heap memory that
LLVM cannot promote to registers). A GEMM's register tile is such a buffer: 8 x 48 fp32
accumulators are 1.5 KiB, and on the heap every FMA would load and store its accumulator
(measured 2x slower than on the stack). So constant-size allocations up to `STACK_LIMIT`
carry TVM's `disable_lower_builtin` annotation and stay `alloca`s that LLVM keeps in zmm
registers. The schedule sizes register tiles under the same limit (tiling.py), and the
`registers` hint rule keeps them within the vector register file.
"""
from __future__ import annotations

from .tiling import STACK_LIMIT

PIPELINE = "fusebuild-tir-cpu"


def pipeline() -> str:
    """The name of the pipeline to pass to tvm.compile, registered on first use."""
    from tvm.tirx import compilation_pipeline as tir_pipelines
    if PIPELINE not in tir_pipelines.PIPELINE_MAP:
        tir_pipelines.register_tir_pipeline(PIPELINE, _factory)
    return PIPELINE


def _factory():
    import tvm
    import tvm.s_tir.pipeline  # noqa: F401 - registers "s_tir", TVM's default for llvm
    from tvm.tirx import compilation_pipeline as tir_pipelines
    lower, finalize_host, finalize_device = tir_pipelines.PIPELINE_MAP["s_tir"]()
    return lower, (lambda: tvm.ir.transform.Sequential([_keep_on_stack(), finalize_host()])), finalize_device


def stack_bytes(buffer) -> int | None:
    """Bytes of a constant-size buffer, None if a dimension is symbolic."""
    import tvm
    from tvm import tirx
    size = tvm.runtime.DataType(buffer.dtype).bits // 8
    for extent in buffer.shape:
        if not isinstance(extent, tirx.IntImm):
            return None
        size *= int(extent)
    return size


def _keep_on_stack():
    """Annotate allocations of at most STACK_LIMIT bytes so LowerTVMBuiltin leaves them allocas
    (it runs first thing in the host finalization, after this pass)."""
    import tvm
    import tvm_ffi
    from tvm import tirx

    def annotate(alloc):
        size = stack_bytes(alloc.buffer)
        if size is None or size > STACK_LIMIT or "disable_lower_builtin" in alloc.annotations:
            return alloc
        return tirx.AllocBuffer(alloc.buffer, dict(alloc.annotations, disable_lower_builtin=tirx.IntImm("bool", 1)))

    @tvm.tirx.transform.prim_func_pass(opt_level=0, name="KeepSmallBuffersOnStack")
    def keep(func, _mod, _ctx):
        return tvm_ffi.structural_map(func, (tirx.AllocBuffer, annotate))
    return keep
