"""An artifact's manifest: what the runtime needs to call it, read from its validation.json.

Validation is the one step that knows everything about an artifact: what it computes
(the graph), which bytes were checked, the verdict, and the machine that gave it. So the
validate stage (run/stages.py) writes the manifest into the report it already writes:

  validation.json
    spec, variant, target, mode, status, reason, ...     (the report, as before)
    validated_on   the kind of device that ran it (runtime/targets.py `here`); absent
                   when nothing ran (toolchain or device missing)
    runtime
      format       FORMAT
      signature    inputs (spec order) and outputs: shape, dtype, layout, dynamic dims
      graph        the canonical graph (ir.graph.Graph.canonical): enough to rebuild it
      key          what the spec said that the artifact and its verdict depend on
                   (graph digest, hints for this target, seed, tolerance): compared
                   with the current spec to find an artifact older than its spec
      tolerance    per output: the rule validation used (Tolerance)
      files        sha256 of each file the target's loader reads: the bytes validated

An exported folder (runtime/export.py) is these reports next to those files: no specs/
is needed to load it. Nothing here imports torch or a toolchain.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from ..hashing import digest, file_sha256
from ..status import Status, parse
from .signature import Signature

FORMAT = "fusebuild.runtime/v1"
REPORT = "validation.json"


@dataclass(frozen=True)
class Tolerance:
    """How far an output may be from its reference (run/validate.py decides the numbers):
    |out - ref| <= atol + rtol |ref|, where atol is fixed by the spec or else
    atol_scale * max(max|ref|, 1) (a GEMM's error scales with its terms)."""
    rtol: float
    atol: float | None = None
    atol_scale: float | None = None     # None: rtol

    def bounds(self, ref=None) -> tuple:
        """(atol, rtol) for an output whose reference is `ref` (a tensor, or None)."""
        if self.atol is not None:
            return self.atol, self.rtol
        scale = float(ref.abs().max()) if ref is not None and ref.numel() else 1.0
        return (self.rtol if self.atol_scale is None else self.atol_scale) * max(scale, 1.0), self.rtol


def spec_key(variant, target: str) -> dict:
    """What the spec says that an artifact of (variant, target) and its verdict depend on."""
    return {"graph": variant.graph.digest(), "hints": variant.schedule.get(target, {}), "seed": variant.seed,
            "tolerance": variant.tolerance}


def changed(stored: dict, current: dict) -> list:
    """The fields of a spec key that differ (compared as canonical JSON)."""
    return [k for k in sorted(set(stored) | set(current)) if digest(stored.get(k)) != digest(current.get(k))]


def file_hashes(folder, names) -> dict:
    """{name: sha256} of the files present (a missing one is left out)."""
    folder = Path(folder)
    return {n: file_sha256(folder / n) for n in names if (folder / n).is_file()}


def block(variant, target: str, folder, files: tuple, tolerance: dict) -> dict:
    """The `runtime` block of an artifact's report (validate writes it)."""
    graph = variant.graph
    return {"format": FORMAT,
            "signature": Signature.of_graph(graph, getattr(variant, "dynamic", None)).to_json(),
            "graph": graph.canonical(), "key": spec_key(variant, target),
            "tolerance": {name: dataclasses.asdict(t) for name, t in tolerance.items()},
            "files": file_hashes(folder, files)}


@dataclass(frozen=True)
class Manifest:
    folder: Path
    report: dict

    @property
    def spec(self) -> str:
        return self.report.get("spec", "")

    @property
    def variant(self) -> str:
        return self.report.get("variant", "")

    @property
    def target(self) -> str:
        return self.report.get("target", "")

    @property
    def id(self) -> str:
        return f"{self.spec}/{self.variant}/{self.target}"

    @property
    def status(self) -> Status | None:
        return parse(self.report.get("status"))

    @property
    def reason(self) -> str:
        return self.report.get("reason") or ""

    @property
    def runtime(self) -> dict | None:
        block = self.report.get("runtime")
        return block if isinstance(block, dict) and block.get("format") == FORMAT else None

    @property
    def signature(self) -> Signature | None:
        return Signature.from_json(self.runtime["signature"]) if self.runtime else None

    @property
    def key(self) -> dict:
        return self.runtime["key"] if self.runtime else {}

    @property
    def files(self) -> dict:
        return self.runtime["files"] if self.runtime else {}

    @property
    def validated_on(self) -> dict | None:
        return self.report.get("validated_on")

    def tolerance(self, output: str) -> Tolerance:
        rule = (self.runtime or {}).get("tolerance", {}).get(output)
        if rule is None:
            raise KeyError(f"{self.id} has no output {output!r}")
        return Tolerance(**rule)

    def graph(self):
        """The graph this artifact computes, rebuilt from the manifest (ir.graph.Graph)."""
        from ..ir.graph import Graph, Node, Tensor
        from ..ir.layouts import Layout
        c = self.runtime["graph"]
        tensors = {n: Tensor(n, tuple(t["shape"]), t["dtype"],
                             Layout(tuple(tuple(tuple(p) for p in lv) for lv in t["layout"])) if t["layout"] else None)
                   for n, t in c["tensors"].items()}
        nodes = tuple(Node(n["op"], tuple(n["inputs"]), n["output"], tuple((k, _frozen(v)) for k, v in n["attrs"]))
                      for n in c["nodes"])
        return Graph(tensors, tuple(c["inputs"]), nodes, tuple(c["outputs"]))


def _frozen(value):
    return tuple(_frozen(v) for v in value) if isinstance(value, list) else value


def read(folder) -> Manifest | None:
    """The manifest of the artifact in `folder`, or None if it has no readable report."""
    path = Path(folder) / REPORT
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return Manifest(Path(folder), report) if isinstance(report, dict) else None
