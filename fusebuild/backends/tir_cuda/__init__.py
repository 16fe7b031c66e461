"""tir-cuda: TileLang tile-level TIR for NVIDIA Hopper (sm_90a), lowered in its own toolchain env."""
