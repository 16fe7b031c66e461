"""The checker's own table of hardware facts, each with the mlir-aie source it comes from.

This table belongs to `rules.py` alone. The design generator plans with its own
numbers (`plan.PLANNING`); a test compares the two, so a wrong number on either side
is caught instead of being checked against itself.

Sources (Xilinx/mlir-aie, the stored copies of the v1.3.1 era, 2025-11 .. 2026-05):
  TM   include/aie/Dialect/AIE/IR/AIETargetModel.h  (AIE2TargetModel, BaseNPU2TargetModel,
       NPU2TargetModel) and lib/Dialect/AIE/IR/AIETargetModel.cpp
       (AIE2TargetModel::getNumDestSwitchboxConnections / getNumSourceSwitchboxConnections,
       getNumDestShimMuxConnections)
  VSW  lib/Dialect/AIEX/IR/AIEXDialect.cpp  AIEX::verifyStridesWraps, NpuDmaMemcpyNdOp::verify,
       NpuDmaMemcpyNdOp::getOffsetInBytes; include/aie/Dialect/AIEX/Utils/BdLowering.h
       encodeHardwareStridesWraps
  BD   lib/Dialect/AIE/IR/AIEDialect.cpp  DMABDOp::verify (the BDs the object-FIFO
       lowering creates from `dimensionsToStream`), ObjectFifoCreateOp::verify, CoreOp::verify
  OFT  lib/Dialect/AIE/Transforms/AIEObjectFifoStatefulTransform.cpp  (requiresDMAs,
       isSharedMemory, createObjectFifoElements, the channel allocation that emits
       "number of input DMA channel exceeded!")
  AB   lib/Dialect/AIE/Transforms/AIEAssignBuffers.cpp  basicAllocation /
       simpleBankAwareAllocation (the stack sits at the bottom of data memory)
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fact:
    value: int
    source: str


# device -> (columns, rows): TM NPU2TargetModel::columns() = 8, BaseNPU2TargetModel::rows() = 6
# (1 shim row, 1 mem tile row, 4 core rows); npu1 (Phoenix) has 4 columns (BaseNPU1TargetModel).
DEVICES = {
    "npu2": Fact(8, "AIETargetModel.h NPU2TargetModel::columns"),
    "npu1": Fact(4, "AIETargetModel.h NPU1TargetModel::columns"),
}
ROWS = Fact(6, "AIETargetModel.h BaseNPU2TargetModel::rows (shim row 0, mem tile row 1, cores 2..5)")
MEM_ROW = 1

# DMA channels per tile kind and direction (S2MM = into the tile, MM2S = out of it)
CHANNELS = {
    "core": Fact(2, "AIETargetModel.cpp AIE2TargetModel::getNum{Dest,Source}SwitchboxConnections(DMA) = 2"),
    "mem": Fact(6, "AIETargetModel.cpp AIE2TargetModel::getNum{Dest,Source}SwitchboxConnections(DMA) = 6 on mem tiles"),
    "shim": Fact(2, "AIETargetModel.cpp AIE2TargetModel::getNum{Dest,Source}ShimMuxConnections(DMA) = 2"),
}
# buffer descriptors per tile: TM AIE2TargetModel::getNumBDs (mem tile 48, others 16); on a mem
# tile even channels reach BDs 0..23 and odd channels 24..47 (isBdChannelAccessible)
BDS = {
    "core": Fact(16, "AIETargetModel.h AIE2TargetModel::getNumBDs"),
    "mem": Fact(48, "AIETargetModel.h AIE2TargetModel::getNumBDs (24 per channel parity, isBdChannelAccessible)"),
    "shim": Fact(16, "AIETargetModel.h AIE2TargetModel::getNumBDs"),
}
LOCKS = {
    "core": Fact(16, "AIETargetModel.h AIE2TargetModel::getNumLocks"),
    "mem": Fact(64, "AIETargetModel.h AIE2TargetModel::getNumLocks"),
    "shim": Fact(16, "AIETargetModel.h AIE2TargetModel::getNumLocks"),
}
LOCAL_MEMORY = Fact(0x10000, "AIETargetModel.h AIE2TargetModel::getLocalMemorySize (64 KiB)")
MEM_TILE_MEMORY = Fact(0x80000, "AIETargetModel.h AIE2TargetModel::getMemTileSize (512 KiB)")
STACK_ATTR = "stack_size"        # AB: basicAllocation starts buffers at core.getStackSize()

# address generation of a buffer descriptor, per tile kind (VSW verifyStridesWraps):
#   wrap (size) field bits, step (stride) field bits; iteration (repeat) size field 6 bits
WRAP_BITS = {"shim": 10, "mem": 10, "core": 8}
STEP_BITS = {"shim": 20, "mem": 17, "core": 13}
ITER_BITS = 6
GRANULE_BYTES = 4                # AIE2TargetModel::getAddressGenGranularity = 32 bits

# dimensionsToStream BDs (BD DMABDOp::verify): at most 4 dimensions on a mem tile, 3 elsewhere;
# `dim.getSize() >= (1 << 9) + 1` is refused (so sizes <= 512, although the message says 1023);
# `dim.getStride() >= (1 << 19)` is refused; a stride of 0 is refused.
BD_DIMS = {"mem": 4, "core": 3}
BD_MAX_SIZE = 512
BD_MAX_STRIDE = (1 << 19) - 1
