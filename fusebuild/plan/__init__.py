"""Planning: what to build and the keys that decide whether each stage is current.

  artifacts.py  Artifact / NodeArtifact, and the units each dispatch mode builds
  keys.py       the one keys module: per stage, the up-to-date key and the cache key
  project.py    a project (settings, specs, artifacts, toolchains), built on demand

Describes only: nothing here runs a toolchain.
"""
