"""mlir-aie target: IRON-style MLIR-AIE designs for AMD NPUs (see backend.py)."""
