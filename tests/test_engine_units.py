"""Engine pieces without doit runs: key fields and their diff, orphan detection."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fusebuild.engine import orphans
from fusebuild.engine.uptodate import flatten
from fusebuild.engine.why import diff_fields


def test_flatten_and_diff_name_the_changed_fields():
    old = flatten({"graph": {"nodes": [{"op": "silu", "inputs": ["a"]}]}, "seed": 3, "code": "ab" * 32})
    new = flatten({"graph": {"nodes": [{"op": "relu", "inputs": ["a"]}]}, "seed": 3, "code": "cd" * 32})
    assert old["graph.nodes[0].inputs"] == '["a"]' and old["code"].startswith("sha256:")
    assert diff_fields(old, new) == [f"fusebuild code: code {old['code']} -> {new['code']}",
                                     "spec: graph.nodes[0].op silu -> relu"]
    assert diff_fields(flatten({"versions": {"tvm": "1"}}), flatten({"versions": {"tvm": "2", "llvm": "x"}})) == [
        "toolchain: versions.llvm added (x)", "toolchain: versions.tvm 1 -> 2"]


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
