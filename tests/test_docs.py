"""README.md and docs/ stay true: CI runs the README's test command, and every module, file
or folder they name exists (a doc that points at a moved module fails here)."""
from __future__ import annotations

import re

import pytest

from conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_ci_runs_the_readmes_test_command():
    command = (REPO / ".ci/run").read_text().strip().splitlines()[-1]
    assert command.startswith("python3 -m venv .venv") and "pytest" in command and "ruff check fusebuild" in command
    assert command in (REPO / "README.md").read_text().splitlines()


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_path_and_module_a_doc_names_exists(doc):
    text = doc.read_text()
    # repository paths (specs/ is left out: docs show example specs that are not shipped);
    # a pattern (tests/test_<package>..., results.{json,md}) is not a path
    paths = {m.group(1) for m in re.finditer(r"(?<![\w/.])((?:fusebuild|templates|tests|bench|docs)/[\w./-]*[\w/])", text)
             if not re.match(r"[<{*]|\.\{", text[m.end():m.end() + 2])}
    modules = set(re.findall(r"python -m (fusebuild(?:\.\w+)*)", text))
    missing = [p for p in sorted(paths) if not (REPO / p).exists()]
    missing += [m for m in sorted(modules) if not ((REPO / m.replace(".", "/")).with_suffix(".py").exists()
                                                   or (REPO / m.replace(".", "/") / "__main__.py").exists())]
    assert not missing, f"{doc.name} names what does not exist: {missing}"


def hint_row(target: str, h) -> str:
    default = "schedule's choice" if h.default is None else str(h.default)
    allowed = ", ".join(map(str, h.choices)) if h.choices else f"{h.lo}..{h.hi}"
    return f"| `{target}` | `{h.name}` | {default} | {allowed} | {h.meaning} |"


def test_architecture_lists_every_declared_hint():
    from fusebuild.backends import TARGETS
    lines = (REPO / "docs" / "architecture.md").read_text().splitlines()
    rows = [hint_row(t, h) for t, info in TARGETS.items() for h in info.hints]
    table = [line for line in lines if line.startswith("| `") and line.count("|") == 6]
    assert table == rows, "docs/architecture.md's hint table is not the declared hints; its rows should be:\n" + \
        "\n".join(rows)
