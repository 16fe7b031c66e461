"""The `tilelang` toolchain env tir-cuda lowers in (declared as data; envs.py creates it)."""
from ...envs import ToolchainEnv

PROBE = """\
import json, sys
from importlib.metadata import version
import tilelang
print(json.dumps({"tilelang": tilelang.__version__, "apache-tvm-ffi": version("apache-tvm-ffi"),
                  "env-torch": version("torch"), "env-python": sys.version.split()[0]}))
"""

# torch first and pinned: an unpinned torch pulled in by tilelang is a multi-GB CUDA build.
TILELANG = ToolchainEnv(
    "tilelang", steps=(("torch==2.13.0",), ("tilelang==0.1.15",)), probe=PROBE,
    purpose="TileLang 0.1.15 (pins apache-tvm-ffi<0.1.13, which breaks apache-tvm 0.27): lowers tir-cuda kernels")
