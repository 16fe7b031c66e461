"""mlir-cpu: upstream MLIR (linalg on tensors) compiled and run by IREE for the host CPU."""
