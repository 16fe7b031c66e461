"""mlir-cpu's schedule hints: none yet (IREE's llvm-cpu pipeline picks its own tiles)."""
from ..hints import table

HINTS = table()
