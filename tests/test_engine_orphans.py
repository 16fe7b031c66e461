"""engine/orphans.py: out/ folders no spec asks for (at every level), leftovers of killed
builds, protected specs that do not load; and through real `doit`: the build's note,
`fusebuild orphans` and `fusebuild clean`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from fusebuild.engine import orphans

from conftest import gemm_spec

ART = "out/one/M4_N32_K16/tir-cpu"


@dataclass(frozen=True)
class _V:
    spec: str
    name: str


@dataclass(frozen=True)
class _A:
    variant: _V
    target: str


def test_orphans_at_every_level_and_protected_specs(tmp_path: Path):
    for rel in ("s/v1/t", "s/v1/old_target", "s/v2/t", "gone/v/t", "bad/v/t", ".fusebuild", "s/v1/t/.staging-1"):
        (tmp_path / rel).mkdir(parents=True)
    (tmp_path / "report.md").write_text("")
    (tmp_path / "s/v1/t/.kernel.o.abc.tmp").write_text("")
    found, left = orphans.find(tmp_path, [_A(_V("s", "v1"), "t")], keep_specs={"bad"})
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["gone", "s/v1/old_target", "s/v2"]
    assert sorted(p.name for p in left) == [".kernel.o.abc.tmp", ".staging-1"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: realname\nparams: {\n")
    assert orphans.protected_specs([(bad, None)]) == {"bad", "realname"}


@pytest.mark.e2e
@pytest.mark.slow
def test_orphans_are_reported_and_cleaned_but_a_bad_spec_keeps_its_outputs(project):
    one = project.spec("one", gemm_spec("one"))
    two = project.spec("two", gemm_spec("two"))
    three = project.spec("three", gemm_spec("three").replace("M: [4, 8]", "M: [4]"))
    project.doit("build", check=0)
    two.unlink()                                                   # a removed spec
    one.write_text(gemm_spec("one").replace("M: [4, 8]", "M: [4]"))  # a removed variant
    three.write_text(gemm_spec("three").replace("op: matmul", "op: matmull"))  # a spec that does not load
    r = project.doit("build")
    assert "note: 2 orphaned folder(s)" in r.text and "python -m fusebuild clean" in r.text, r.text
    assert "## Orphans" in (project.root / "out/report.md").read_text()
    listed = project.fusebuild("orphans").stdout
    assert "out/two" in listed and "out/one/M8_N32_K16" in listed and "three" not in listed, listed
    cleaned = project.fusebuild("clean")
    assert cleaned.returncode == 0 and "2 orphaned folder(s), 0 leftover(s) removed" in cleaned.stdout
    assert not (project.root / "out/two").exists() and not (project.root / "out/one/M8_N32_K16").exists()
    assert (project.root / ART / "kernel.so").is_file() and (project.root / "out/three/M4_N32_K16").is_dir()
    (project.root / ART / ".staging-x").mkdir()                    # a killed build's leftover
    assert "0 orphaned folder(s), 1 leftover(s)" in project.fusebuild("orphans").stdout
