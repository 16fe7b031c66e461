"""fusebuild: a declarative build system for fused ML operators.

YAML specs (spec/) -> a typed graph (ir/) -> planned artifacts and keys (plan/) ->
rendered, compiled, assembled and validated by each target's backend (backends/, run/),
cached by content (cache/), as a doit task graph (engine/). docs/architecture.md walks
through one artifact. Importing any module of the package does nothing but define.
"""
