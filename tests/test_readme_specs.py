"""Every YAML block of the README and docs loads (issue 15, item 6): a spec as a spec
(with its commented-out options switched on too, such as the `tolerance:` example with
YAML 1.1's string `1e-3`), anything else at least parses."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from fusebuild.spec import parse_spec

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCKS = [(f"{p.name}:{text[:m.start()].count(chr(10)) + 2}", m.group(1))
          for p in DOCS for text in [p.read_text()] for m in re.finditer(r"```ya?ml\n(.*?)```", text, re.DOTALL)]


def uncommented(block: str) -> str:
    """The block with `# key: value` option lines turned on."""
    return re.sub(r"^# (\w+: .*?)(?:\s+#.*)?$", r"\1", block, flags=re.MULTILINE)


def test_the_readme_has_a_spec_with_a_tolerance_example():
    assert any("tolerance:" in b and "1e-3" in b for _, b in BLOCKS)


@pytest.mark.parametrize("where,block", BLOCKS, ids=[w for w, _ in BLOCKS])
def test_yaml_block_loads(where, block):
    doc = yaml.safe_load(block)
    if isinstance(doc, dict) and {"name", "graph"} <= set(doc):
        for text in (block, uncommented(block)):
            spec = parse_spec(text, where)
            assert spec.variants, where
        on = parse_spec(uncommented(block), where).variants[0]
        if "1e-3" in block:
            assert on.tolerance["float32"]["atol"] == 1e-3
