"""Jinja environments for backends (sandboxed, strict, recording the templates they load).

Templates only lay out text; every decision is made in Python and passed in. The
environment is sandboxed (a template cannot reach Python internals), StrictUndefined
(a missing variable is an error, not an empty string), and its loader is confined to
the backend's folder under `templates/` (plus, for tests and experiments, override
folders named in FUSEBUILD_TEMPLATE_OVERRIDES, searched first). Spec strings reach
templates only as values (names are checked identifiers), never as template source.

Every template a render loads is recorded with its hash, so the render task knows
exactly which templates an artifact came from (a depfile, as ninja has).

A Dask worker renders with the coordinator's templates, fetched by content into a folder
of its own: `SEARCH` (a context variable, so each task thread has its own) then replaces
the search path (fusebuild/distributed/worker.py).
"""
from __future__ import annotations

import contextvars
import os
from pathlib import Path

from ..hashing import file_sha256, sha256
from ..ir import ops

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
OVERRIDES_ENV = "FUSEBUILD_TEMPLATE_OVERRIDES"
# numbers the op macros need (gelu), written as Python/MLIR/C float literals
CONSTANTS = {"SQRT_HALF": repr(ops.SQRT_HALF), "SQRT_2_OVER_PI": repr(ops.SQRT_2_OVER_PI)}


SEARCH = contextvars.ContextVar("fusebuild_template_search", default=None)   # [dir, ...] replacing the search path


def template_dirs(backend_folder: str) -> list:
    fixed = SEARCH.get()
    if fixed is not None:
        return [Path(d) for d in fixed]
    extra = [Path(p) / backend_folder for p in os.environ.get(OVERRIDES_ENV, "").split(os.pathsep) if p]
    return [p for p in extra if p.is_dir()] + [TEMPLATES / backend_folder]


def _recording_loader(backend_folder):
    import jinja2  # here, not at import: planting a no-op build must not pay for Jinja

    class RecordingLoader(jinja2.FileSystemLoader):
        def __init__(self):
            super().__init__([str(d) for d in template_dirs(backend_folder)])
            self.folder, self.used = backend_folder, {}

        def get_source(self, environment, template):
            source, filename, uptodate = super().get_source(environment, template)
            self.used[template] = [_show(filename), sha256(source.encode())]
            return source, filename, uptodate

    return RecordingLoader()


def _show(path) -> str:
    path = Path(path)
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def make_env(backend_folder: str, **globals_):
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    loader = _recording_loader(backend_folder)
    env = SandboxedEnvironment(loader=loader, undefined=jinja2.StrictUndefined, autoescape=False,
                               keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(CONSTANTS, **globals_)
    return env


def used_templates(env) -> dict:
    """The render's depfile: backend folder and {template name: [path, sha256]} of every
    template this environment loaded."""
    return {"folder": env.loader.folder, "templates": dict(sorted(env.loader.used.items()))}


def templates_unchanged(deps) -> bool:
    """True if every template in a depfile still resolves to the same file with the same
    content (an override folder added or removed counts as a change)."""
    if not deps or "templates" not in deps:
        return False
    dirs = template_dirs(deps["folder"])
    for name, (path, digest) in deps["templates"].items():
        found = next((d / name for d in dirs if (d / name).is_file()), None)
        if found is None or _show(found) != path or file_sha256(found) != digest:
            return False
    return True
