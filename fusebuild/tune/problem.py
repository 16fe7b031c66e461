"""The canonical problem a tuning record is for, and the key records are filed under.

A problem is what decides which schedule is fastest: the fused graph's computation (ops,
attributes, shapes, dtypes, layouts) with its tensor names replaced by their position
(inputs `in0, in1, ...`, node outputs `t0, t1, ...` in graph order), so `gemm_bias_silu`
and a copy of it under another name with other tensor names share their tuning. The spec's
values for hints that are not searched (`threads`, `npu`, ...) are part of it too: they
change what is measured.

A record's key is (problem, target, device, toolchain versions); `key_id` is its short digest.
Pure data: no toolchain, no torch.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..hashing import digest
from ..ir.graph import fuse


def canonical_graph(graph) -> dict:
    """graph.canonical() with tensor names replaced by their position."""
    names = {n: f"in{i}" for i, n in enumerate(graph.inputs)}
    for i, node in enumerate(graph.nodes):
        names.setdefault(node.output, f"t{i}")
    c = graph.canonical()
    return {"tensors": {names[k]: v for k, v in c["tensors"].items() if k in names},
            "inputs": [names[n] for n in c["inputs"]], "outputs": [names[n] for n in c["outputs"]],
            "nodes": [dict(n, inputs=[names[i] for i in n["inputs"]], output=names[n["output"]])
                      for n in c["nodes"]]}


def problem(graph, pinned: dict) -> dict:
    return {"graph": canonical_graph(graph), "pinned": dict(sorted(pinned.items()))}


def problem_id(prob: dict) -> str:
    return digest(prob)[:16]


def summary(graph) -> str:
    """A short human name of the problem: `1024x1024x1024 float32 matmul+add+silu`."""
    parts = []
    for g in fuse(graph):
        ops = "+".join(n.op for n in g.nodes)
        if g.matmul is not None:
            a = graph.tensors[g.matmul.inputs[0]]
            m, n = graph.tensors[g.matmul.output].shape
            parts.append(f"{m}x{n}x{a.shape[1]} {a.dtype} {ops}")
        else:
            parts.append(f"{'x'.join(map(str, graph.tensors[g.output].shape))} {ops}")
    return "; ".join(parts)


@dataclass(frozen=True)
class Key:
    problem: str              # problem_id
    target: str
    device: str
    toolchain: tuple          # sorted (name, version) pairs

    @property
    def id(self) -> str:
        return digest(self.as_json())[:16]

    def as_json(self) -> dict:
        return {"problem": self.problem, "target": self.target, "device": self.device,
                "toolchain": dict(self.toolchain)}

    @staticmethod
    def of(prob_id: str, target: str, device: str, versions: dict) -> Key:
        return Key(prob_id, target, device, tuple(sorted((k, str(v)) for k, v in versions.items())))

    @staticmethod
    def from_json(d: dict) -> Key:
        return Key.of(d["problem"], d["target"], d["device"], d.get("toolchain") or {})
