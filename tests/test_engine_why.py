"""engine/why.py: key fields flattened and diffed field by field, and (through real `doit`)
the one line each task that runs prints for each kind of change, and `fusebuild why`."""
from __future__ import annotations

import json
import re

import pytest

from fusebuild.engine.uptodate import flatten
from fusebuild.engine.why import diff_fields

from conftest import REPO, DoitResult, gemm_spec

ART = "out/one/M4_N32_K16/tir-cpu"


def test_flatten_and_diff_name_the_changed_fields():
    old = flatten({"graph": {"nodes": [{"op": "silu", "inputs": ["a"]}]}, "seed": 3, "code": "ab" * 32})
    new = flatten({"graph": {"nodes": [{"op": "relu", "inputs": ["a"]}]}, "seed": 3, "code": "cd" * 32})
    assert old["graph.nodes[0].inputs"] == '["a"]' and old["code"].startswith("sha256:")
    assert diff_fields(old, new) == [f"fusebuild code: code {old['code']} -> {new['code']}",
                                     "spec: graph.nodes[0].op silu -> relu"]
    assert diff_fields(flatten({"versions": {"tvm": "1"}}), flatten({"versions": {"tvm": "2", "llvm": "x"}})) == [
        "toolchain: versions.llvm added (x)", "toolchain: versions.tvm 1 -> 2"]


def why_of(result: DoitResult, task: str) -> str:
    m = re.search(rf"^\.  {re.escape(task)}  \[\d+/\d+\] (.*)$", result.text, re.M)
    assert m, result.text
    return m.group(1)


@pytest.mark.e2e
@pytest.mark.slow
def test_why_line_for_each_kind_of_change(project, tmp_path):
    path = project.spec("one", gemm_spec("one"))
    r = project.doit("build", check=0)
    assert why_of(r, "render:one/M4_N32_K16/tir-cpu") == "never built (or its last run failed or did not finish)"
    # a spec field
    path.write_text(gemm_spec("one", act="relu"))
    r = project.doit("build", check=0)
    assert why_of(r, "render:one/M4_N32_K16/tir-cpu") == "spec: graph.nodes[2].op silu -> relu"
    assert why_of(r, "compile:one/M4_N32_K16/tir-cpu") == f"input changed: {ART}/kernel.py"
    path.write_text(gemm_spec("one", act="relu").replace("seed: 3", "seed: 4"))
    r = project.doit("build", check=0)
    assert why_of(r, "validate:one/M4_N32_K16/tir-cpu") == "spec: seed 3 -> 4"
    # a template (the override folder shadows templates/tir/gemm.j2, then its content changes)
    folder = project.root / "overrides"
    (folder / "tir").mkdir(parents=True)
    src = (REPO / "templates/tir/gemm.j2").read_text()
    (folder / "tir/gemm.j2").write_text(src)
    project.env["FUSEBUILD_TEMPLATE_OVERRIDES"] = str(folder)
    r = project.doit("build", check=0)
    assert why_of(r, "render:one/M4_N32_K16/tir-cpu").startswith("template: gemm.j2 now comes from "), r.text
    (folder / "tir/gemm.j2").write_text("{# reviewed #}\n" + src)
    r = project.doit("build", check=0)
    assert why_of(r, "render:one/M4_N32_K16/tir-cpu") == f"template: {folder}/tir/gemm.j2 changed"
    # a toolchain version
    fake = tmp_path / "fakedist" / "apache_tvm-0.99.0.dist-info"
    fake.mkdir(parents=True)
    (fake / "METADATA").write_text("Metadata-Version: 2.1\nName: apache-tvm\nVersion: 0.99.0\n")
    env = {"PYTHONPATH": f"{fake.parent}:{REPO}"}
    assert "toolchain: versions.apache-tvm" in project.fusebuild("why", "compile:one/M4_N32_K16/tir-cpu", env=env).stdout
    r = project.doit("build", check=0, env=env)
    assert why_of(r, "compile:one/M4_N32_K16/tir-cpu").startswith("toolchain: versions.apache-tvm 0.27"), r.text
    assert "-> 0.99.0" in why_of(r, "compile:one/M4_N32_K16/tir-cpu")
    # a missing output, and a truncated (damaged) artifact: both rebuilt, nothing else
    (project.root / ART / "kernel.o").unlink()
    so = project.root / "out/one/M8_N32_K16/tir-cpu/kernel.so"
    so.write_bytes(so.read_bytes()[:100])
    r = project.doit("build", check=0, env=env)
    assert why_of(r, "compile:one/M4_N32_K16/tir-cpu") == f"output missing: {ART}/kernel.o"
    assert why_of(r, "assemble:one/M8_N32_K16/tir-cpu") == (
        "output damaged: out/one/M8_N32_K16/tir-cpu/kernel.so is not the file its last run produced")
    assert sorted(r.ran) == ["assemble:one/M8_N32_K16/tir-cpu", "compile:one/M4_N32_K16/tir-cpu"], r.text
    assert json.loads((so.parent / "validation.json").read_text())["status"] == "pass"
    # the report of the last build says why
    md = (project.root / "out/report.md").read_text()
    assert "| one/M8_N32_K16/tir-cpu | pass |" in md and "assemble: output damaged" in md, md
    assert "apache-tvm: 0.99.0" in md and (project.root / "out/report.html").is_file()
