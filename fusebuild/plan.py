"""Planning: which artifacts a set of specs asks for, where they live, and the keys that
decide whether each stage is up to date. Describes only; runs nothing.

An artifact is one (spec, variant, target). Its folder is out/<spec>/<variant>/<target>/.
Keys are JSON-able dicts; the doit tasks store their digests (config_changed), so a
change of any field reruns the stage and, through its outputs, what follows.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from .backends import TARGETS
from .errors import SpecError
from .spec import load_spec
from .toolchains import package_version

PKG = Path(__file__).resolve().parent


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


@functools.lru_cache(maxsize=None)
def code_digest(*rel_paths: str) -> str:
    """Hash of fusebuild's own source files that a stage's output depends on."""
    h = hashlib.sha256()
    for rel in rel_paths:
        for path in sorted((PKG / rel).rglob("*.py")) if (PKG / rel).is_dir() else [PKG / rel]:
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def backend_folder(target: str) -> str:
    return TARGETS[target].module.rsplit(".", 1)[0].replace("fusebuild.", "").replace(".", "/")


def render_key(a: Artifact) -> dict:
    v = a.variant
    return {"graph": v.graph.digest(), "hints": v.schedule.get(a.target, {}), "source": v.path,
            "code": code_digest("graph.py", "ops.py", "render.py", "layouts.py", backend_folder(a.target))}
    # template overrides need no key: the render's depfile re-resolves each template
    # name through the current search path (render.templates_unchanged)


def toolchain_key(a: Artifact, toolchain: dict) -> dict:
    return {"versions": toolchain["versions"], "code": code_digest(backend_folder(a.target))}


def validate_key(a: Artifact, toolchain: dict) -> dict:
    v = a.variant
    return {"graph": v.graph.digest(), "seed": v.seed, "tolerance": v.tolerance, "mode": v.mode,
            "torch": package_version("torch"), "versions": toolchain["versions"],
            "code": code_digest("validate.py", "ops.py", "stages.py", "modes.py")}


def load_specs(spec_dir) -> tuple:
    """(specs, errors): every spec file loaded, or its SpecError. A bad file never stops
    the others; two files claiming one name are both reported."""
    specs, errors = [], []
    for path in sorted(Path(spec_dir).glob("*.yaml")) + sorted(Path(spec_dir).glob("*.yml")):
        try:
            specs.append(load_spec(path))
        except SpecError as err:
            errors.append((path, err))
    by_name = {}
    for s in specs:
        by_name.setdefault(s.name, []).append(s)
    for name, same in by_name.items():
        if len(same) > 1:
            for s in same:
                others = ", ".join(o.path for o in same if o is not s)
                errors.append((Path(s.path), SpecError(f"spec name '{name}' is also used by {others}",
                                                       path=s.path, line=1, field="name", valid="unique spec names")))
    bad = {str(p) for p, _ in errors}
    return [s for s in specs if s.path not in bad], errors


def artifacts(specs, out) -> list:
    return [Artifact(v, t, Path(out)) for s in specs for v in s.variants for t in v.targets]
