"""tir-cuda's schedule hints (see tiles.py for how each is used). Unset hints take the
tuned default tile configuration of the shape class."""
from ..hints import Hint, table

HINTS = table(
    Hint("block_m", "rows of x per CTA tile (swap-AB: rows of w)", None, 16, 256, tune=(64, 128, 256)),
    Hint("block_n", "rows of w per CTA tile (swap-AB: rows of x)", None, 16, 256, tune=(64, 112, 128, 224, 256)),
    Hint("block_k", "reduction depth of one pipeline stage", None, 16, 256, tune=(64, 128)),
    Hint("stages", "software pipeline stages", None, 1, 8, tune=(2, 3, 4)),
    Hint("threads", "threads per CTA", None, choices=(128, 256, 384, 512)),
    Hint("split_k", "K split into this many partial GEMMs, reduced with the epilogue", None, 1, 16),
    Hint("swizzle", "rasterization panel width (T.use_swizzle)", None, 1, 64),
    Hint("swap_ab", "1: compute C^T = W x^T (small M on the wgmma N side)", None, choices=(1,)),
    Hint("dual_block_m", "SwiGLU gate/up kernel: rows of x per CTA tile", None, 16, 256),
    Hint("dual_block_n", "SwiGLU gate/up kernel: rows of w per CTA tile", None, 16, 256),
    Hint("dual_stages", "SwiGLU gate/up kernel: pipeline stages", None, 1, 8),
    Hint("dual_threads", "SwiGLU gate/up kernel: threads per CTA", None, choices=(128, 256, 384, 512)),
    Hint("fast_math", "1: nvcc --use_fast_math (approximate expf/erff/division)", None, choices=(1,)),
)
