"""tir-cuda's schedule hints (tiles.py says how each is used, and `check_hints` what applies
to a shape: the loader runs it through program.check). Unset hints take the tuned default
tile configuration of the shape class (tiles.default_*). The `dual_` ones set the SwiGLU
gate/up kernel; the plain ones the GEMM, and also SwiGLU's down GEMM and every later GEMM of a
chain unless their `down_` form is given (an MLP's fc1 and fc2 tiled apart)."""
from ..hints import Hint, table

_THREADS = (128, 256, 384, 512)

_GEMM = (
    Hint("block_m", "rows of x per CTA tile (swap-AB: rows of w)", None, 1, 256, tune=(64, 128, 256)),
    Hint("block_n", "rows of w per CTA tile (swap-AB: rows of x)", None, 1, 256, tune=(64, 112, 128, 224, 256)),
    Hint("block_k", "reduction depth of one pipeline stage", None, 1, 256, tune=(64, 128)),
    Hint("stages", "software pipeline stages", None, 1, 8, tune=(2, 3, 4)),
    Hint("threads", "threads per CTA", None, choices=_THREADS),
    Hint("split_k", "K split into this many partial GEMMs, reduced with the epilogue", None, 1, 256),
    Hint("inline_reduce", "split-K: 1 the last split of a tile reduces and applies the epilogue in-kernel "
                          "(no second kernel); 0 (default) a separate reduce kernel", None, choices=(0, 1)),
    Hint("swizzle", "rasterization panel width (T.use_swizzle)", None, 1, 64),
    Hint("min_blocks", "CTAs per SM the kernel is compiled for (register budget)", None, 1, 4),
    Hint("persistent", "1: one CTA per SM loops over the output tiles (direct mode, no split-K)", None,
         choices=(1,)),
    Hint("ws", "1: the hand-written warp-specialized kernel (mbarrier rings, CTAs walked in pairs of x tiles; "
               "direct mode, no split-K, K and N multiples of 8); 0: TileLang's T.Pipelined one", None, choices=(0, 1)),
    Hint("swap_ab", "1: compute C^T = W x^T (small M on the wgmma N side: decode)", None, choices=(1,)),
    Hint("direct", "1: x rows on the wgmma M side (prefill)", None, choices=(1,)),
)

HINTS = table(
    *_GEMM,
    Hint("dual_block_m", "SwiGLU gate/up kernel: rows of x per CTA tile", None, 1, 256),
    Hint("dual_block_n", "SwiGLU gate/up kernel: rows of w per CTA tile", None, 1, 256),
    Hint("dual_block_k", "SwiGLU gate/up kernel: reduction depth of one stage", None, 1, 256),
    Hint("dual_stages", "SwiGLU gate/up kernel: pipeline stages", None, 1, 8),
    Hint("dual_threads", "SwiGLU gate/up kernel: threads per CTA", None, choices=_THREADS),
    Hint("dual_swizzle", "SwiGLU gate/up kernel: rasterization panel width", None, 1, 64),
    Hint("dual_min_blocks", "SwiGLU gate/up kernel: CTAs per SM it is compiled for", None, 1, 4),
    Hint("dual_persistent", "SwiGLU gate/up kernel: 1 runs one CTA per SM over the tiles", None, choices=(1,)),
    Hint("dual_swap_ab", "SwiGLU gate/up kernel: 1 selects the swap-AB (decode) form", None, choices=(1,)),
    Hint("dual_direct", "SwiGLU gate/up kernel: 1 selects the direct (prefill) form", None, choices=(1,)),
    Hint("dual_ws", "SwiGLU gate/up kernel: 1 the hand-written warp-specialized kernel (see ws); 0 TileLang's "
                    "T.Pipelined one", None, choices=(0, 1)),
    *(Hint(f"down_{h.name}", f"SwiGLU's down GEMM and every later GEMM of a chain (an MLP's fc2): {h.meaning} "
                             f"(unset: the plain {h.name})", h.default, h.lo, h.hi, choices=h.choices)
      for h in _GEMM),
    Hint("fast_math", "1: nvcc --use_fast_math (approximate expf/erff/division)", None, choices=(1,)),
)
