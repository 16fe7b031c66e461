"""The one keys module: for each stage, everything its result depends on.

A stage's key has two parts:
  fields   what is not a file: target, graph digest, hints, seed, tolerances, mode,
           toolchain versions, and the digest of the fusebuild code that produces or
           judges the result. doit's up-to-date check compares their digest
           (engine/uptodate.fresh), and `why` names the field that changed.
  inputs   the content (sha256) of the files the stage reads: doit tracks them as
           file deps; the cache needs them in its key, since a cache entry is shared
           between checkouts whose files differ.
The cache's action key is `fields + inputs`, hashed by the one hash function
(hashing.digest): the cache and `why` read the same fields.

The render key's `schedule` holds the hints the backend actually renders with and where
they came from (tune/select.py: tuned winner, spec hints or defaults), so a new tuning
winner re-renders and `why` names it; the validate key holds it too (the report names it).

Which code each stage's result depends on:
  render    the IR (graph, ops, layouts, dtypes), the shared render helpers, the
            backend's folder; its templates through the render's depfile (up to date)
            and the whole template folder (cache: which ones a render will load is
            known only after it ran)
  compile   the backend's folder; assemble: the same
  validate  how an artifact is run and judged: run/ (stages, validate, modes), runtime/
            (the loaders and the call path every run goes through, the manifest written
            into the report), the IR (host packing through layouts), backends/base.py
            (host buffers), the node modes' plan (plan/artifacts.py: units and fallbacks)
            and the backend's folder (its run(), loaders, emulator). tests/test_keys_validate.py
            edits each of these in a built tree and checks that validate reruns and a warm
            cache misses.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from ..backends.templating import ROOT, template_dirs
from ..hashing import digest, file_sha256
from ..toolchains import package_version
from . import artifacts as A

PKG = Path(__file__).resolve().parent.parent
RENDER_CODE = ("ir", "backends/base.py", "backends/text.py", "backends/templating.py")
VALIDATE_CODE = ("run", "runtime", "ir", "backends/base.py", "status.py", "plan/artifacts.py")


@functools.lru_cache(maxsize=None)
def code_digest(*rel_paths: str) -> str:
    """Digest of fusebuild's own source files (folders: every .py below them)."""
    parts = []
    for rel in rel_paths:
        base = PKG / rel
        for path in sorted(base.rglob("*.py")) if base.is_dir() else [base]:
            parts.append([str(path.relative_to(PKG)), file_sha256(path)])
    return digest(parts)[:16]


def file_hashes(folder, names) -> dict:
    return {n: file_sha256(Path(folder) / n) for n in names}


def templates_digest(template_folder: str) -> str:
    """Every template file the backend's environment could load, in search order."""
    return digest(templates_listing(template_folder))


def templates_listing(template_folder: str) -> list:
    """[["dir", shown folder], [file, sha256], ...] per search folder, in order (what a
    cluster worker fetches to render with the coordinator's templates)."""
    parts = []
    for d in template_dirs(template_folder):
        shown = d.relative_to(ROOT) if d.is_relative_to(ROOT) else d    # same in every checkout
        parts.append(["dir", str(shown)])
        parts += [[str(p.relative_to(d)), file_sha256(p)] for p in sorted(Path(d).rglob("*")) if p.is_file()]
    return parts


@dataclass(frozen=True)
class StageKey:
    stage: str
    fields: dict                                   # up to date: digest compared, fields explained
    inputs: object = field(default=dict)           # () -> {file: sha256}; read only when the stage runs
    detail: dict = field(default_factory=dict)     # field -> () -> full value, for explanations only

    def cache_key(self) -> dict:
        return {"stage": self.stage, **self.fields, "inputs": self.inputs()}


def render(a, backend) -> StageKey:
    from ..tune.select import schedule
    v = a.variant
    fields = {"target": a.target, "spec": v.spec, "variant": v.name, "graph": v.graph.digest(), "hints": a.hints,
              "schedule": schedule(a, backend).key_fields(), "code": code_digest(*RENDER_CODE, backend_folder(backend))}
    return StageKey("render", fields, lambda: {"templates": templates_digest(backend.template_folder)},
                    {"graph": v.graph.canonical})


def compile(a, backend, toolchain) -> StageKey:
    return StageKey("compile", _tool_fields(a, backend, toolchain),
                    lambda: file_hashes(a.dir, backend.source_files))


def assemble(a, backend, toolchain) -> StageKey:
    return StageKey("assemble", _tool_fields(a, backend, toolchain),
                    lambda: file_hashes(a.dir, backend.assemble_inputs))


def validate(a, backend, toolchain) -> StageKey:
    """`backend` is None in reference mode (no artifact runs)."""
    v = a.variant
    fields = {"target": a.target, "graph": v.graph.digest(), "seed": v.seed, "tolerance": v.tolerance,
              "hints": a.hints,      # validation.json records them: a hint change rewrites the record
              "mode": v.mode, "torch": package_version("torch"), "versions": dict(toolchain.versions),
              "available": toolchain.available, "reason": toolchain.reason,
              "code": code_digest(*VALIDATE_CODE, *((backend_folder(backend),) if backend else ()))}
    if v.samples:                                  # a dynamic artifact: the sizes it is validated at
        fields["samples"] = [dict(s) for s in v.samples]
    if backend:                 # the report says which schedule ran (tuned, hint, default)
        from ..tune.select import schedule
        fields["schedule"] = schedule(a, backend).key_fields()

    def inputs():     # every file assemble wrote: the report records their hashes (runtime manifest)
        names = backend.artifact_files if backend else []
        return {str(u.dir.relative_to(a.dir)): file_hashes(u.dir, names) for u in A.units(a, backend)}
    return StageKey("validate", fields, inputs, {"graph": v.graph.canonical})


def verdict(a, backend) -> str:
    """What a device's verdict on an artifact depends on, whichever machine gave it: the
    graph, seed, tolerances, mode, the code that validates and runs it, and the artifact's
    bytes (not the toolchain versions or torch: a GPU machine has others). A build on a
    machine without the device keeps a verdict whose key still matches (run/devices.py)."""
    v = a.variant
    return digest({"graph": v.graph.digest(), "seed": v.seed, "tolerance": v.tolerance, "mode": v.mode,
                   "samples": [dict(s) for s in v.samples] if v.samples else None,
                   "code": code_digest(*VALIDATE_CODE, backend_folder(backend)),
                   "artifacts": {str(u.dir.relative_to(a.dir)): file_hashes(u.dir, backend.artifact_files)
                                 for u in A.units(a, backend)}})


def backend_folder(backend) -> str:
    return backend.info.folder


def _tool_fields(a, backend, toolchain) -> dict:
    return {"target": a.target, "versions": dict(toolchain.versions), "code": code_digest(backend_folder(backend))}
