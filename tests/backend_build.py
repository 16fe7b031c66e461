"""Build and validate one variant through the backend interface (no doit): render,
compile, assemble into a folder, then run it at each sample size and compare with the
torch reference exactly as validation does (run/samples.py). For tests that build many
shapes quickly (the shape fuzz, dynamic artifacts)."""
from __future__ import annotations

import textwrap

from fusebuild.backends import TARGETS, get_backend
from fusebuild.backends.base import RenderJob
from fusebuild.plan.artifacts import Artifact
from fusebuild.run.samples import run_samples
from fusebuild.spec import parse_spec


def variant_of(text: str, target: str, index: int = 0):
    vs = [v for v in parse_spec(textwrap.dedent(text), "specs/t.yaml").variants if target in v.targets]
    return vs[index]


def build(v, target: str, folder):
    """Render, compile and assemble `v` for `target` into `folder`."""
    backend = get_backend(target)
    job = RenderJob(v.graph, TARGETS[target].hints.resolve(v.schedule.get(target, {})), v.spec, v.name)
    for name, text in backend.render(job).files.items():
        (folder / name).write_text(text)
    backend.compile(folder, folder)
    backend.assemble(folder, folder)
    return backend


def validate(v, target: str, out):
    """Build `v` under out/<spec>/<variant>/<target> and validate it: a run/samples.SampledRun."""
    a = Artifact(v, target, out)
    a.dir.mkdir(parents=True, exist_ok=True)
    backend = build(v, target, a.dir)
    return run_samples(a, backend)
