"""The one mlir-aie version the designs are written for, and the command lines of its tools.

fusebuild targets **mlir-aie v1.3.1** (the release tag of May 2026; wheels
`mlir_aie==1.3.1` from the project's release page, with the matching `llvm-aie`
(Peano) nightly). Every form the rendered designs use exists in that version:

  - `aie.runtime_sequence(...)`: the op moved from `aiex` to `aie` in
    Xilinx/mlir-aie PR #2708 (merged 2025-11-13, no alias kept for the old name).
  - `func.func private @k(...) attributes {link_with = "kernels.o"}`: func-level
    `link_with`, PR #2922 (2026-03-04); the core-level `link_with` is deprecated
    since then, and a core may not carry both.
  - `aiex.npu.dma_memcpy_nd(%arg[offsets][sizes][strides]) {id, metadata,
    issue_token}` with 4 static offsets/sizes/strides (outermost first) and the
    `aiex.npu.dma_wait {symbol}` that awaits an `issue_token` transfer (both forms
    since 2024; the x/y operands were dropped in 2024).
  - `aie.objectfifo @name(%producer [dimensionsToStream [<size, stride>...]],
    {%consumers}, depth : i32) : !aie.objectfifo<memref<...>>` and
    `aie.objectfifo.link [@ins] -> [@outs]([src offsets] [dst offsets])`
    (join: source offsets; distribute: destination offsets).
  - aiecc's output flags `--aie-generate-xclbin/--aie-generate-npu-insts` with
    `--xclbin-name/--npu-insts-name`: the C++ driver of 2026 kept the Python
    driver's names until PR #3364 (2026-07-17) replaced them with `--get-<name>`,
    i.e. after v1.3.1.

The rules of `rules.py` were read from the mlir-aie sources of that era (the
stored copies named in `facts.py`).
"""
from __future__ import annotations

MLIR_AIE = "v1.3.1"
MLIR_AIE_DATE = "2026-05"
FORMS = {
    "aie.runtime_sequence": "Xilinx/mlir-aie PR #2708, merged 2025-11-13",
    "func.func link_with": "Xilinx/mlir-aie PR #2922, merged 2026-03-04",
    "aiex.npu.dma_memcpy_nd": "static [offsets][sizes][strides] form, since 2024",
    "aie.objectfifo / aie.objectfifo.link": "ODS AIEOps.td, unchanged 2024-2026",
    "aiecc --aie-generate-*": "replaced by --get-<name> in PR #3364 (2026-07-17), after the pin",
}
KERNEL_OBJECT = "kernels.o"
ARCH = {"npu1": "aie2", "npu2": "aie2p"}          # the core architecture of each device


def peano_command(peano_dir: str, mlir_aie_dir: str, device: str, source: str, obj: str) -> list:
    """Compile the rendered kernels with Peano (llvm-aie), as IRON builds its kernels."""
    return [f"{peano_dir}/bin/clang++", "-O2", "-std=c++20", f"--target={ARCH[device]}-none-unknown-elf",
            "-DNDEBUG", "-Wno-parentheses", "-Wno-attributes", "-Wno-macro-redefined",
            f"-I{mlir_aie_dir}/include", "-c", source, "-o", obj]


def aiecc_command(aiecc: str, peano_dir: str, design: str) -> list:
    """The v1.3.1 aiecc line: Peano for the cores (no Chess), xclbin + NPU instructions."""
    return [aiecc, "--no-compile-host", "--no-xchesscc", "--no-xbridge", f"--peano={peano_dir}",
            "--aie-generate-xclbin", "--xclbin-name=final.xclbin",
            "--aie-generate-npu-insts", "--npu-insts-name=insts.bin", design]
