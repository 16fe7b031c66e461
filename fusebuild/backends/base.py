"""What every backend implements, with the records its methods return.

A backend turns one graph into files in an artifact folder, stage by stage; each stage
reads the files of the stage before it, so stages can run in separate processes (or on
separate machines) and be cached by content:

  render(job)                  -> Rendered: {file name: text} + the templates it loaded
                                  (pure: no toolchain, no filesystem)
  compile(build_dir, dest)     reads `source_files` from build_dir, writes `compiled_files` into dest
  assemble(build_dir, dest)    reads `assemble_inputs`, writes `artifact_files` into dest
  run(build_dir, graph, inputs)-> {output name: torch tensor}: executes the artifact
  toolchain()                  -> Toolchain: can this machine build it, and with which versions
  device()                     -> Device: can this machine run what was built
  execution(build_dir)         -> None when `run` executed the artifact on its device;
                                  an Execution (status emulated, reason, steps) otherwise
  schedule(build_dir)          -> the schedule the artifact was built with, as recorded
                                  by render or compile (for reports)
  can_build(graph, hints)      -> None, or why this target cannot build `graph` alone
                                  (the node modes then use a fallback; default: try render)

Every method except render works on files only, so the debugging modes, the cache and
the engine are written once, against this class.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from ..status import Status


@dataclass(frozen=True)
class Toolchain:
    available: bool
    versions: dict = field(default_factory=dict)   # name -> version: part of every key
    reason: str = ""                               # why not available

    @staticmethod
    def missing(reason: str) -> "Toolchain":
        return Toolchain(False, {}, reason)


@dataclass(frozen=True)
class Device:
    available: bool
    reason: str = ""                               # why artifacts cannot run here
    fix: str = ""                                  # where or how they can run (a command)
    name: str = ""                                 # the device (e.g. "NVIDIA H200"): its verdicts are kept
                                                   # in validation.json's validated_on (run/devices.py)


@dataclass(frozen=True)
class Execution:
    """How a validation ran when it did not run the artifact on its device."""
    status: Status
    reason: str
    steps: dict = field(default_factory=dict)      # step -> "ran: ..." | "not-run: ..."


@dataclass(frozen=True)
class RenderJob:
    graph: object              # ir.graph.Graph
    hints: dict                # resolved schedule hints (declared defaults filled in)
    spec: str                  # spec name (an identifier)
    variant: str               # variant name (identifiers and numbers only)
    parts: dict = field(default_factory=dict)   # part_label -> hints: static winners of a dynamic artifact's parts


def part_label(values: dict) -> str:
    """`M=1024`: the name of one static part of a dynamic artifact (Backend.static_parts)."""
    return ",".join(f"{k}={v}" for k, v in sorted(values.items()))


@dataclass(frozen=True)
class Rendered:
    files: dict                # file name -> text
    templates: dict            # the depfile: {"folder", "templates": {name: [path, sha256]}}


class Backend(ABC):
    source_files: ClassVar[tuple] = ()        # what render writes
    compiled_files: ClassVar[tuple] = ()      # what compile writes
    artifact_name: ClassVar[str] = ""         # the file validation runs
    template_folder: ClassVar[str] = ""       # templates/<folder>/

    def __init__(self, info):
        self.info = info                      # backends.TargetInfo
        self.name = info.name

    @property
    def artifact_files(self) -> tuple:
        """Every file assemble writes (cached and tracked together)."""
        return (self.artifact_name,)

    @property
    def assemble_inputs(self) -> tuple:
        """Every file assemble reads: its file deps and part of its cache key."""
        return self.compiled_files

    @abstractmethod
    def toolchain(self) -> Toolchain: ...

    def device(self) -> Device:
        return Device(True)

    @abstractmethod
    def render(self, job: RenderJob) -> Rendered: ...

    @abstractmethod
    def compile(self, build_dir: Path, dest: Path) -> None: ...

    @abstractmethod
    def assemble(self, build_dir: Path, dest: Path) -> None: ...

    @abstractmethod
    def run(self, build_dir: Path, graph, inputs: dict) -> dict: ...

    def execution(self, build_dir: Path) -> Execution | None:
        return None

    def can_build(self, graph, hints: dict | None = None) -> str | None:
        """None if this target builds `graph` as one artifact, else why not (a line).

        The node modes ask it for each node (plan/artifacts.node_steps): a node a target
        cannot build alone runs fused with its producer, or as its torch reference, and
        the compare table names which. The default renders the graph (pure: no toolchain,
        no files) and reports what the render refused; a backend with a cheap structural
        rule (e.g. "elementwise work must follow a matmul") should override it.
        """
        key = (graph.digest(), tuple(sorted((hints or {}).items())))
        cache = self.__dict__.setdefault("_can_build", {})
        if key not in cache:
            try:
                self.render(RenderJob(graph, self.info.hints.resolve(hints or {}), "probe", "probe"))
                cache[key] = None
            except Exception as err:       # noqa: BLE001 - any refusal is the answer, shown in the table
                cache[key] = f"{type(err).__name__}: {getattr(err, 'message', None) or err}"
        return cache[key]

    def schedule(self, build_dir: Path) -> dict:
        return {}

    def static_parts(self, graph) -> tuple:
        """The static problems a dynamic artifact of `graph` compiles and calls as they are, as
        ({param: value}, static graph) pairs; a tuned winner of one shapes that part
        (tune/select.py). () if none."""
        return ()

    def part_problem(self, used: dict, winner: dict) -> str | None:
        """Why a part cannot take a static winner's hints beside the artifact's own `used`
        (e.g. a flag that applies to the whole module), else None."""
        return None


# --- host buffers: for backends that run artifacts themselves (mlir-aie's emulator); ----
# tir-cpu and mlir-cpu run through runtime/call.py, which packs layouts the same way

def host_buffers(graph, inputs: dict) -> dict:
    """Kernel arguments in order (inputs, then outputs), packed into their layouts.

    Outputs start as NaN so an element the kernel never writes cannot pass.
    """
    import torch

    from ..runtime.call import pack
    buffers = {}
    for name in graph.inputs:
        x, t = inputs[name].contiguous(), graph.tensors[name]
        buffers[name] = pack(x, t.layout.dims) if t.layout is not None else x
    for name in graph.outputs:
        t = graph.tensors[name]
        buffers[name] = torch.full(t.memory_shape, float("nan"), dtype=getattr(torch, t.dtype))
    return buffers


def host_outputs(graph, buffers: dict) -> dict:
    from ..runtime.call import unpack
    out = {}
    for name in graph.outputs:
        t = graph.tensors[name]
        out[name] = unpack(buffers[name], t.layout.dims, t.shape) if t.layout is not None else buffers[name]
    return out
