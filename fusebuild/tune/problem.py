"""The canonical problem a tuning record is for, and the key records are filed under.

A problem is what decides which schedule is fastest: the fused graph's computation (ops,
attributes, shapes, dtypes, layouts) with its tensor names replaced by their position
(inputs `in0, in1, ...`, node outputs `t0, t1, ...` in graph order), so `gemm_bias_silu`
and a copy of it under another name with other tensor names share their tuning. The spec's
values for hints that are not searched (`threads`, `npu`, ...) are part of it too: they
change what is measured.

A dynamic problem (`M: {dynamic: [1, 4096]}`: one artifact for every M in the range) has no
single M to time at. Its canonical graph holds the range (Graph.canonical), and the problem
adds the sizes a candidate is timed at (`sizes`): the sizes its artifact is validated at
(the variant's `samples`: the range's minimum, a prime near its geometric middle, its
maximum, and the spec's `validate:` sizes). A candidate's time is the geometric mean over
them (measure.py), so each size counts alike (a 2x loss at M=1 weighs as much as at 4096);
the minimum stands for decode-like calls, the maximum for full batches, the prime for the
ragged sizes in between, and `validate:` lets a spec add the sizes it cares about (they are
then checked and timed). A dynamic problem never shares a key with a static one.

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


def sizes(variant) -> tuple:
    """The sizes a candidate of `variant` is timed at: ({},) for a static variant (its one
    shape), else its validation samples ({M: 1}, {M: 61}, {M: 4096}, ...)."""
    return tuple(variant.samples) if variant.dynamic else ({},)


def problem(graph, pinned: dict, timed: tuple = ({},)) -> dict:
    out = {"graph": canonical_graph(graph), "pinned": dict(sorted(pinned.items()))}
    if graph.dynamic:           # only then: static problems keep the digests they always had
        out["sizes"] = [dict(sorted(s.items())) for s in timed]
    return out


def problem_id(prob: dict) -> str:
    return digest(prob)[:16]


def summary(graph) -> str:
    """A short human name of the problem: `1024x1024x1024 float32 matmul+add+silu` (a
    dynamic dimension as its range: `M1..4096x1024x1024 ...`)."""
    def dims(x) -> list:
        return [str(n) if s is None else f"{s}{graph.dynamic[s][0]}..{graph.dynamic[s][1]}"
                for n, s in zip(x.shape, x.symbols)]

    parts = []
    for g in fuse(graph):
        ops = "+".join(n.op for n in g.nodes)
        if g.matmul is not None:
            a = graph.tensors[g.matmul.inputs[0]]
            parts.append(f"{'x'.join(dims(graph.tensors[g.matmul.output]))}x{dims(a)[1]} {a.dtype} {ops}")
        else:
            parts.append(f"{'x'.join(dims(graph.tensors[g.output]))} {ops}")
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
