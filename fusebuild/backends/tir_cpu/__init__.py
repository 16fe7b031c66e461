"""tir-cpu: Apache TVM TIR (TVMScript), scheduled and compiled by LLVM for the host CPU."""
