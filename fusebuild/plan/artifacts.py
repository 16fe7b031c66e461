"""Artifacts: which (spec, variant, target) units a set of specs asks for, and where they live.

An artifact's folder is out/<spec>/<variant>/<target>/. In the debugging modes that build
one artifact per graph node (separate, compare) each node is a `NodeArtifact` in
out/<spec>/<variant>/<target>/nodes/<node>/, rendered, compiled and assembled by the same
tasks as a fused one (`units`). Describes only; runs nothing.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path

NODE_MODES = ("separate", "compare")          # modes that build one artifact per node


@dataclass(frozen=True)
class Artifact:
    variant: object            # spec.Variant
    target: str
    out: Path                  # out/ root

    @property
    def id(self) -> str:
        return f"{self.variant.spec}/{self.variant.name}/{self.target}"

    @functools.cached_property          # asked for many times per task while planning
    def dir(self) -> Path:
        return self.out / self.variant.spec / self.variant.name / self.target

    @functools.cached_property
    def report(self) -> Path:
        return self.dir / "validation.json"

    @property
    def hints(self) -> dict:
        """The spec's schedule hints for this target (as written; backends fill defaults)."""
        return self.variant.schedule.get(self.target, {})


@dataclass(frozen=True)
class NodeArtifact(Artifact):
    """One graph node of an artifact, built on its own (its variant holds the one-node graph)."""
    node: str = ""

    @property
    def id(self) -> str:
        return f"{super().id}/nodes/{self.node}"

    @property
    def dir(self) -> Path:
        return super().dir / "nodes" / self.node


def artifacts(specs, out) -> list:
    return [Artifact(v, t, Path(out)) for s in specs for v in s.variants for t in v.targets]


def with_mode(artifacts: list, mode: str | None) -> list:
    """Artifacts with `mode` (an invocation's override) in their variant, or as they are."""
    if mode is None:
        return list(artifacts)
    return [dataclasses.replace(a, variant=dataclasses.replace(a.variant, mode=mode)) for a in artifacts]


def needs_toolchain(a: Artifact) -> bool:
    return a.variant.mode != "reference"


def units(a: Artifact) -> list:
    """What must be rendered, compiled and assembled for `a` in its mode."""
    mode = a.variant.mode
    if mode == "fused":
        return [a]
    if mode in NODE_MODES:
        return [node_artifact(a, node) for node in a.variant.graph.nodes]
    return []


def node_artifact(a: Artifact, node) -> NodeArtifact:
    v = a.variant
    return NodeArtifact(dataclasses.replace(v, graph=v.graph.subgraph(node)), a.target, a.out, node.output)
