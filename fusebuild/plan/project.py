"""A project: its settings, specs, artifacts and toolchains, computed when first asked for.

Creating a `Project` reads nothing; `project.specs` loads every spec file (a file that
does not load becomes one entry of `project.errors`, never an exception), `artifacts`
and `units` list what a build asks for, `toolchain(target)` probes a target once. The
engine's task creators, its reporter and commands, gpu-validate and the CLI all work
from one of these.
"""
from __future__ import annotations

import functools
from pathlib import Path

from .. import settings
from ..errors import SpecError, did_you_mean, one_of, printable, quote
from ..spec.fields import MODES
from ..spec.load import load_spec, name_clashes
from . import artifacts as A

MODE_SETTING = "FUSEBUILD_MODE"


def invocation_mode(env=None) -> str | None:
    """The mode FUSEBUILD_MODE asks for, None if unset. Raises SpecError if unknown."""
    mode = settings.get(MODE_SETTING, env).strip()
    if not mode:
        return None
    if mode not in MODES:
        raise SpecError(f"unknown mode {mode!r}{did_you_mean(mode, MODES)}",
                        path=f"environment variable {MODE_SETTING}", valid=one_of(MODES))
    return mode


def load_specs(spec_dir, targets=None) -> tuple:
    """(specs, errors): every spec file loaded, or its error. A bad file never stops the
    others; two files claiming one name are both reported."""
    specs, errors = [], []
    for path in sorted(Path(spec_dir).glob("*.yaml")) + sorted(Path(spec_dir).glob("*.yml")):
        try:
            specs.append(load_spec(path, targets))
        except SpecError as err:
            errors.append((path, err))
        except Exception as err:   # noqa: BLE001 - load_spec raises only SpecError; this is the last guard
            errors.append((path, SpecError(f"cannot be loaded ({type(err).__name__}: {quote(str(err))})",
                                           path=str(path), line=1, field="spec")))
    errors += [(Path(path), err) for path, err in name_clashes(specs).items()]
    bad = {str(p) for p, _ in errors}
    return [s for s in specs if s.path not in bad], errors


def spec_task_name(path) -> str:
    """The name of a spec file's own task (`build:<this>`) when it does not load: its file
    name with extension (`good.yml` and `good.yaml` differ; no spec name has a dot), with
    control characters escaped."""
    return printable(Path(path).name, keep="")


class Project:
    def __init__(self, specs_dir="specs", out="out", env=None, targets=None):
        from ..backends import TARGETS
        self.specs_dir, self.out, self.env = Path(specs_dir), Path(out), env
        self.targets = targets if targets is not None else TARGETS
        self.mode = None                           # FUSEBUILD_MODE, read with the specs
        self._toolchains, self._backends = {}, {}

    @classmethod
    def from_settings(cls, env=None, targets=None) -> "Project":
        return cls(settings.get("FUSEBUILD_SPECS", env), settings.get("FUSEBUILD_OUT", env), env, targets)

    @functools.cached_property
    def _loaded(self) -> tuple:
        specs, errors = load_specs(self.specs_dir, self.targets)
        try:
            self.mode = invocation_mode(self.env)
        except SpecError as err:                   # a bad FUSEBUILD_MODE: one failing task says so
            return [], errors + [(Path(MODE_SETTING), err)]
        return specs, errors

    @property
    def specs(self) -> list:
        return self._loaded[0]

    @property
    def errors(self) -> list:
        """[(path, SpecError)] of every spec (or setting) that did not load."""
        return self._loaded[1]

    @functools.cached_property
    def artifacts(self) -> list:
        arts = A.artifacts(self.specs, self.out)
        return A.with_mode(arts, self.mode)

    @functools.cached_property
    def units(self) -> list:
        return [u for a in self.artifacts for u in A.units(a, self.backend(a.target) if a.variant.mode in A.NODE_MODES
                                                            else None)]

    def backend(self, target: str):
        """The target's backend (imports its module: only when a stage needs it)."""
        if target not in self._backends:
            from ..backends import get_backend
            self._backends[target] = get_backend(target, self.targets)
        return self._backends[target]

    def toolchain(self, target: str):
        if target not in self._toolchains:
            self._toolchains[target] = self.backend(target).toolchain()
        return self._toolchains[target]
