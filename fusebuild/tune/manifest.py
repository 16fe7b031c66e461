"""Where candidates live, and the manifest the measuring step reads (no doit, no toolchain).

A candidate is an Artifact whose hints are fixed to one configuration (tune/select.py
renders it with exactly those), built in
    out/.tune/<spec>/<variant>/<target>/<candidate id>/
by the same stages as any artifact (candidates.py). A stage that fails there writes
`.stages/failed.json` (stage, message): what the records say about it.

Per artifact, `tune.json` next to its candidates is the manifest the measuring step reads,
on this machine or on the GPU machine after `fusebuild tune --build-only`:
  key, key_id        the records key (problem, target, device, toolchain versions)
  artifact, problem  the artifact id and a short name of the problem
  candidates         [{id, config, status: built | compile-failed, error, same_as}]
                     (same_as: an earlier candidate whose artifact is byte-identical)
  anchor             the incumbent winner's candidate id (re-timed in the same run), or null
  space              searched hints, size after the rules, rejections per rule, budget
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from ..fsutil import read_json, write_json
from ..plan.artifacts import Artifact

TUNE_DIR = ".tune"
MANIFEST = "tune.json"
PLAN = "build.json"               # the candidates a builder asked doit for (candidates.py)
FAILED = ".stages/failed.json"


@dataclass(frozen=True)
class Candidate(Artifact):
    cid: str = ""
    config: dict = field(default=None, hash=False, compare=False)

    @property
    def id(self) -> str:
        return f"{super().id}/tune/{self.cid}"

    @functools.cached_property
    def dir(self) -> Path:
        return folder(self.out, self.variant.spec, self.variant.name, self.target) / self.cid

    @property
    def hints(self) -> dict:
        return dict(self.config)


def folder(out, spec: str, variant: str, target: str) -> Path:
    """Where an artifact's candidates and its manifest live."""
    return Path(out) / TUNE_DIR / spec / variant / target


def candidate(a: Artifact, cid: str, config: dict) -> Candidate:
    return Candidate(a.variant, a.target, a.out, cid, dict(config))


def failure(c: Candidate) -> dict | None:
    return read_json(c.dir / FAILED)


def path(a: Artifact) -> Path:
    return folder(a.out, a.variant.spec, a.variant.name, a.target) / MANIFEST


def read(a: Artifact) -> dict | None:
    return read_json(path(a))


def write(a: Artifact, manifest: dict):
    write_json(path(a), manifest)
