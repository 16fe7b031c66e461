"""backends/templating.py: the sandboxed, strict Jinja environment, and the render depfile
(through real `doit`: a template edit rerenders only its users, identical output cuts
off, removing an override rerenders)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import REPO, gemm_spec, render

STAGES = ("render", "compile", "assemble", "validate")

EW_SPEC = """\
name: addmul
params:
  N: [8, 16]
inputs:
  a: {shape: [4, N], dtype: float32}
  b: {shape: [N], dtype: float32}
graph:
  - {op: add, inputs: [a, b], output: s}
  - {op: sigmoid, inputs: [s], output: y}
outputs: [y]
"""


def test_templates_are_sandboxed_and_strict(tmp_path, monkeypatch):
    (tmp_path / "tir").mkdir()
    (tmp_path / "tir" / "kernel.py.j2").write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    monkeypatch.setenv("FUSEBUILD_TEMPLATE_OVERRIDES", str(tmp_path))
    from jinja2.exceptions import SecurityError
    with pytest.raises(SecurityError):
        render(REPO / "specs/gemm.yaml", "tir-cpu")
    (tmp_path / "tir" / "kernel.py.j2").write_text("{{ no_such_variable }}")
    from jinja2.exceptions import UndefinedError
    with pytest.raises(UndefinedError):
        render(REPO / "specs/gemm.yaml", "tir-cpu")


def override(project, name: str, text: str) -> Path:
    folder = project.root / "overrides"
    (folder / "tir").mkdir(parents=True, exist_ok=True)
    (folder / "tir" / name).write_text(text)
    project.env["FUSEBUILD_TEMPLATE_OVERRIDES"] = str(folder)
    return folder / "tir" / name


@pytest.mark.e2e
@pytest.mark.slow
def test_template_edit_rerenders_only_its_users_and_identical_output_cuts_off(project):
    project.spec("gemmspec", gemm_spec("gemmspec"))
    project.spec("addmul", EW_SPEC)
    project.doit("build", check=0)
    # elementwise.j2 is used only by addmul; a Jinja comment changes the template, not its output
    source = (REPO / "templates/tir/elementwise.j2").read_text()
    override(project, "elementwise.j2", "{# reviewed #}\n" + source)
    r = project.doit("build", check=0)
    assert sorted(r.ran) == sorted(f"render:addmul/N{n}/tir-cpu" for n in (8, 16)), r.text
    # a comment in the rendered source: render and compile rerun, the object is identical,
    # so assemble and validate do not (early cutoff on the compiled artifact)
    override(project, "elementwise.j2", source.replace("# {{ g.comment }}", "# elementwise: {{ g.comment }}"))
    r = project.doit("build", check=0)
    assert sorted(r.ran) == sorted(f"{s}:addmul/N{n}/tir-cpu" for s in ("render", "compile") for n in (8, 16)), r.text
    # a change of the computed value: every stage of addmul reruns, and validation catches it
    override(project, "elementwise.j2", source.replace("= {{ g.store }}", "= {{ g.store }} + T.float32(0.5)"))
    r = project.doit("build")
    assert sorted(r.ran) == sorted(f"{s}:addmul/N{n}/tir-cpu" for s in STAGES for n in (8, 16)), r.text
    assert r.code != 0 and re.search(r"^addmul\s+N8\s+tir-cpu\s+fail", r.text, re.M)


@pytest.mark.e2e
@pytest.mark.slow
def test_removing_a_template_override_rerenders(project):
    project.spec("one", gemm_spec("one"))
    source = (REPO / "templates/tir/gemm.j2").read_text()
    override(project, "gemm.j2", source.replace("# {{ g.comment }}", "# overridden: {{ g.comment }}"))
    project.doit("build", check=0)
    project.env["FUSEBUILD_TEMPLATE_OVERRIDES"] = ""
    r = project.doit("build", check=0)
    assert sorted(r.ran_stage("render")) == sorted(f"render:one/M{m}_N32_K16/tir-cpu" for m in (4, 8)), r.text
    assert "overridden" not in (project.root / "out/one/M4_N32_K16/tir-cpu/kernel.py").read_text()
