"""fusebuild: a declarative build system for fused ML operators.

YAML specs (spec/) -> a typed graph (ir/) -> planned artifacts and keys (plan/) ->
rendered, compiled, assembled and validated by each target's backend (backends/, run/),
cached by content (cache/), as a doit task graph (engine/); runtime/ loads and calls what
was built (`fusebuild.load`). docs/architecture.md walks
through one artifact. Importing any module of the package does nothing but define.
"""


def __getattr__(name):
    """`fusebuild.load` (runtime/op.py), imported on first use: `import fusebuild` stays free."""
    if name == "load":
        from .runtime.op import load
        return load
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
