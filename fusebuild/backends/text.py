"""Small text pieces every renderer shows the same way (graph comments, shapes, attributes).

Renderers build their template contexts from these, so a graph line or a shape tuple is
written once for every backend.
"""
from __future__ import annotations


def attrs_text(node) -> str:
    """` [transpose_b=True]`: a node's attributes, defaults that say nothing left out."""
    shown = [f"{k}={v}" for k, v in node.attrs if not (k == "acc_dtype" and v == "float32")]
    return f" [{', '.join(shown)}]" if shown else ""


def node_line(node, attrs: bool = True) -> str:
    """`y = matmul(x, w) [transpose_b=True]`."""
    return f"{node.output} = {node.op}({', '.join(node.inputs)})" + (attrs_text(node) if attrs else "")


def graph_lines(graph, attrs: bool = True) -> list:
    return [node_line(n, attrs) for n in graph.nodes]


def group_comment(group) -> str:
    """The nodes a fused group computes, for a comment above its code."""
    return " ; ".join(node_line(n, attrs=False) for n in group.nodes)


def shape_tuple(shape) -> str:
    """(128, 256) / (256,): a Python tuple literal."""
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def header(job, target: str) -> dict:
    """What every template's header shows: validated identifiers only (no paths, no spec text)."""
    return {"spec": job.spec, "variant": job.variant, "target": target, "graph_lines": graph_lines(job.graph)}
