"""Cache keys: everything a stage's result depends on, by content (never by path or mtime).

Built on plan.py's up-to-date keys (which already name code digests, toolchain versions,
seed, tolerances) plus the content of the stage's inputs, so a key is the same in every
checkout of the same tree and differs whenever the result could differ:
  render    target, graph digest, schedule hints, spec path (shown in the source), renderer
            code, and every template the backend could load (search path + contents)
  compile   target, toolchain versions (incl. host CPU features), backend code,
            sha256 of each rendered file
  assemble  the same, with the compiled files
  validate  plan.validate_key (graph, seed, tolerance, mode, torch, toolchain, code) +
            sha256 of the loadable artifact
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from . import plan
from .backends import get_backend
from .render import ROOT, template_dirs


def file_hashes(folder, names) -> dict:
    return {n: hashlib.sha256((Path(folder) / n).read_bytes()).hexdigest() for n in names}


def templates_digest(template_folder: str) -> str:
    """Every template file the backend's environment could load, in search order."""
    h = hashlib.sha256()
    for d in template_dirs(template_folder):
        shown = d.relative_to(ROOT) if d.is_relative_to(ROOT) else d    # same in every checkout
        h.update(f"dir {shown}\n".encode())
        for path in sorted(p for p in Path(d).rglob("*") if p.is_file()):
            h.update(f"{path.relative_to(d)} {len(path.read_bytes())}\n".encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def render(a) -> dict:
    backend = get_backend(a.target)
    return {"target": a.target, **plan.render_key(a), "spec": a.variant.spec, "variant": a.variant.name,
            "templates": templates_digest(getattr(backend, "template_folder", a.target))}


def compile(a) -> dict:
    backend = get_backend(a.target)
    return {"target": a.target, **plan.toolchain_key(a, backend.toolchain()),
            "inputs": file_hashes(a.dir, backend.source_files)}


def assemble(a) -> dict:
    backend = get_backend(a.target)
    return {"target": a.target, **plan.toolchain_key(a, backend.toolchain()),
            "inputs": file_hashes(a.dir, backend.assemble_inputs)}


def validate(a, toolchain: dict) -> dict:
    """The artifacts the mode runs (none in reference mode), by content."""
    from . import modes
    name = get_backend(a.target).artifact_name if modes.units(a) else None
    return {"target": a.target, **plan.validate_key(a, toolchain),
            "inputs": {str(u.dir.relative_to(a.dir)): file_hashes(u.dir, [name]) for u in modes.units(a)}}
