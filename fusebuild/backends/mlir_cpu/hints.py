"""mlir-cpu's schedule hints: IREE's own knobs, each one changing the code it generates.

Two ways IREE compiles a matmul on the CPU, and the hints of each:
  data_tiling: 0   the matmul is tiled in place (IREE's CPUDoubleTilingExpert pipeline).
                   dist_m/dist_n/vec_m/vec_n/vec_k, set together, replace IREE's choice of
                   tiles: a `compilation_info` attribute on each linalg.matmul in the
                   rendered MLIR (workgroup tile = distribution, register tile =
                   vector_common_parallel, reduction step = vector_reduction)
  data_tiling: 1   operands are packed into tiles and the matmul becomes linalg.mmt4d
                   (--iree-opt-data-tiling); ukernels picks IREE's hand-written mmt4d
                   microkernels (--iree-llvmcpu-enable-ukernels=all) or codegen (none);
                   tile_bytes sizes each operand's workgroup tile
                   (--iree-llvmcpu-matmul-tile-bytes)
The flags go into plan.json (render), which compile and assemble read, so they are part of
both stages' keys; the attribute is part of the rendered source.
"""
from ..hints import Hint, Rule, table

TILE_HINTS = ("dist_m", "dist_n", "vec_m", "vec_n", "vec_k")
DATA_TILED_HINTS = ("ukernels", "tile_bytes")


def _modes(cfg, p):
    tiled = [h for h in TILE_HINTS if cfg.get(h) is not None]
    packed = [h for h in DATA_TILED_HINTS if cfg.get(h) is not None]
    if cfg.get("data_tiling") and tiled:
        return f"{', '.join(tiled)} shape the matmul IREE tiles in place; with data tiling it tiles mmt4d itself"
    if not cfg.get("data_tiling") and packed:
        return f"{', '.join(packed)} act on data-tiled matmuls only (data_tiling: 1)"
    return None


def _together(cfg, p):
    given = [h for h in TILE_HINTS if cfg.get(h) is not None]
    if given and len(given) != len(TILE_HINTS):
        return f"tile hints go together: {', '.join(h for h in TILE_HINTS if h not in given)} unset"
    return None


def _tiles(cfg, p):
    dm, dn, vm, vn, vk = (cfg.get(h) for h in TILE_HINTS)
    if dm is None:
        return None
    if vn % p.lanes:
        return f"vec_n={vn} is not a whole number of {p.lanes}-lane vectors"
    if dm % vm or dn % vn:
        return f"the register tile {vm}x{vn} does not divide the workgroup tile {dm}x{dn}"
    need = vm * (vn // p.lanes) + vn // p.lanes + 1
    if need > p.vector_registers:
        return f"a {vm}x{vn} register tile needs {need} vector registers, the CPU has {p.vector_registers}"
    for g in p.gemms:
        if dm > g.m or dn > g.n or vk > g.k:
            return f"tile {dm}x{dn} (k step {vk}) is larger than the {g.m}x{g.n}x{g.k} matmul"
    return None


MAX_NATIVE_VECTORS = 512      # IREE's --iree-llvmcpu-max-allowed-number-of-native-vectors (default)
ACC_BYTES = 4                 # the register tile accumulates in float32


def max_vector_bytes(p) -> int:
    """IREE's llvm-cpu vector size limit (LLVMCPUVerifyVectorSizeLegality): a vector.contract
    whose iteration space (vec_m x vec_n x vec_k accumulator elements) reaches native vector
    bytes x 512 fails to compile ("One or more operations with large vector sizes (32768
    bytes)" with AVX-512's 64-byte vectors)."""
    return p.lanes * p.bytes * MAX_NATIVE_VECTORS


def _contract(cfg, p):
    """(vec_m, vec_n, vec_k, bytes of the register tile's vector.contract, IREE's limit), or None
    when the tile hints are unset or the contract is below the limit."""
    vm, vn, vk = (cfg.get(h) for h in ("vec_m", "vec_n", "vec_k"))
    if vm is None or vn is None or vk is None:
        return None
    size, limit = vm * vn * vk * ACC_BYTES, max_vector_bytes(p)
    return (vm, vn, vk, size, limit) if size >= limit else None


def _vector_size(cfg, p):
    found = _contract(cfg, p)
    if found is None:
        return None
    vm, vn, vk, size, limit = found
    return (f"register tile {vm}x{vn} with k step vec_k={vk} is a {size}-byte vector.contract "
            f"({vm}*{vn}*{vk} x {ACC_BYTES}-byte accumulators); IREE's llvm-cpu pipeline refuses {limit} "
            f"bytes or more ({p.lanes * p.bytes}-byte native vectors x {MAX_NATIVE_VECTORS}, "
            f"--iree-llvmcpu-max-allowed-number-of-native-vectors)")


def _vector_fit(cfg, p):
    vm, vn, _, _, limit = _contract(cfg, p)
    most = (limit - 1) // (vm * vn * ACC_BYTES)
    pow2 = 1 << (most.bit_length() - 1) if most else 0
    fit = f"vec_k <= {most} with vec_m={vm} vec_n={vn} (e.g. vec_k={pow2})" if most else "a smaller vec_m x vec_n"
    return f"vec_m*vec_n*vec_k*{ACC_BYTES} < {limit}: {fit}"


HINTS = table(
    Hint("data_tiling", "1: pack operands into tiles, matmul as mmt4d (--iree-opt-data-tiling); 0: tile the "
                        "matmul in place (IREE's default)", 0, choices=(0, 1), tune=(0, 1)),
    Hint("ukernels", "data tiling only: 1 IREE's mmt4d microkernels, 0 codegen (--iree-llvmcpu-enable-ukernels=all "
                     "or =none; unset: IREE's default)", None, choices=(0, 1), tune=(0, 1)),
    Hint("tile_bytes", "data tiling only: bytes of an operand's workgroup tile "
                       "(--iree-llvmcpu-matmul-tile-bytes)", None, 1024, 1 << 26, tune=(32768, 131072, 524288)),
    Hint("dist_m", "in-place tiling: rows of a workgroup tile (lowering_config distribution)", None, 1, 4096,
         tune=(32, 64, 128)),
    Hint("dist_n", "in-place tiling: columns of a workgroup tile", None, 1, 4096, tune=(64, 128, 256)),
    Hint("vec_m", "in-place tiling: rows of the register tile (vector_common_parallel)", None, 1, 64,
         tune=(4, 8, 16)),
    Hint("vec_n", "in-place tiling: columns of the register tile (whole SIMD vectors)", None, 1, 512,
         tune=(16, 32, 64)),
    Hint("vec_k", "in-place tiling: reduction step of the register tile (vector_reduction)", None, 1, 512,
         tune=(1, 8, 16)),
    rules=(
        Rule("modes", "tile hints for in-place tiling, ukernels/tile_bytes for data tiling", _modes),
        Rule("together", "the five tile hints are set together or not at all", _together),
        Rule("tiles", "whole vectors, register tile dividing the workgroup tile, fits the registers "
                      "and the problem", _tiles),
        Rule("vector-size", "the register tile's vector.contract (vec_m*vec_n*vec_k float32) stays below IREE's "
                            "llvm-cpu vector size limit (native vector bytes x 512)", _vector_size,
             fit=_vector_fit, hint="vec_k"),
    ),
)
