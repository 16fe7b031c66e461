"""Artifacts: which (spec, variant, target) units a set of specs asks for, and where they live.

An artifact's folder is out/<spec>/<variant>/<target>/. In the debugging modes that build
one artifact per graph node (separate, compare) each node is a `NodeArtifact` in
out/<spec>/<variant>/<target>/nodes/<node>/, rendered, compiled and assembled by the same
tasks as a fused one (`units`). Describes only; runs nothing.

A node the target cannot build alone (`Backend.can_build`, e.g. an elementwise node on a
target that renders GEMMs with epilogues) gets a fallback, named in the compare table:
  fused with its producer   the unit is the node together with the node producing one of
                            its inputs (the first such pair the target can build); the
                            step runs the pair on the target's own values of its inputs
  torch reference           no unit: the step runs the node's torch reference, marked
                            "not on target" with the target's reason
`node_steps` plans this; `units` lists what gets built.
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
class FolderArtifact(Artifact):
    """A planned artifact's variant and target, built in another folder (a tuning candidate,
    a benchmark's build): run and judged from `folder` as the planned one would be."""
    folder: Path = None

    @property
    def dir(self) -> Path:
        return self.folder

    @property
    def report(self) -> Path:
        return self.folder / "validation.json"


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


def units(a: Artifact, backend=None) -> list:
    """What must be rendered, compiled and assembled for `a` in its mode. In node modes,
    `backend` (its `can_build`) decides the fallbacks; without one every node is a unit."""
    mode = a.variant.mode
    if mode == "fused":
        return [a]
    if mode in NODE_MODES:
        return [s.unit for s in node_steps(a, backend) if s.unit is not None]
    return []


@dataclass(frozen=True)
class NodeStep:
    node: object               # ir.graph.Node
    unit: NodeArtifact | None  # what runs it on the target; None: its torch reference
    fallback: str = ""         # "" (built alone), "fused with its producer <p>",
    #                            or "torch reference, not on target: <why>"
    producer: object = None    # the producer Node fused into the unit, if any


def node_steps(a: Artifact, backend=None) -> list:
    """One NodeStep per graph node of `a`, in graph order (see the module doc)."""
    graph, steps = a.variant.graph, []
    for node in graph.nodes:
        sub = graph.subgraph(node)
        why = backend.can_build(sub, a.hints) if backend is not None else None
        if why is None:
            steps.append(NodeStep(node, node_artifact(a, node)))
            continue
        producers = [p for i in node.inputs for p in graph.nodes if p.output == i]
        for p in producers:
            pair = subgraph_of(graph, (p, node))
            if backend.can_build(pair, a.hints) is None:
                steps.append(NodeStep(node, node_artifact(a, node, pair), f"fused with its producer {p.output}", p))
                break
        else:
            steps.append(NodeStep(node, None, f"torch reference, not on target: {why.splitlines()[0][:200]}"))
    return steps


def node_artifact(a: Artifact, node, graph=None) -> NodeArtifact:
    v = a.variant
    sub = graph if graph is not None else v.graph.subgraph(node)
    return NodeArtifact(dataclasses.replace(v, graph=sub), a.target, a.out, node.output)


def subgraph_of(graph, nodes: tuple):
    """The graph of `nodes` (in order): inputs are the tensors they read and do not make,
    the output is the last node's."""
    made = {n.output for n in nodes}
    ins = tuple(dict.fromkeys(i for n in nodes for i in n.inputs if i not in made))
    keep = {n: graph.tensors[n] for n in (*ins, *made)}
    return type(graph)(keep, ins, tuple(nodes), (nodes[-1].output,))
