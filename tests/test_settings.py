"""settings.py: the one table of FUSEBUILD_* settings. Every FUSEBUILD_* name the package
reads is in it, `get` falls back to the default, and the README documents each setting
with the same default and meaning."""
from __future__ import annotations

import re

from fusebuild import settings

from conftest import REPO


def readme_row(s: settings.Setting) -> str:
    """The README's row of a setting (markdown: a | inside a cell is written \\|)."""
    default = f"`{s.default}`" if s.default else "unset"
    return f"| `{s.name}` | {default} | {s.meaning.replace('|', chr(92) + '|')} |"


def test_every_setting_the_package_reads_is_in_the_table():
    used = set()
    for path in (REPO / "fusebuild").rglob("*.py"):
        used |= set(re.findall(r"FUSEBUILD_[A-Z_]+", path.read_text()))
    assert used - set(settings.SETTINGS) == set(), "add these to fusebuild/settings.py"


def test_get_falls_back_to_the_default():
    assert settings.get("FUSEBUILD_OUT", {}) == "out"
    assert settings.get("FUSEBUILD_OUT", {"FUSEBUILD_OUT": "  "}) == "out"
    assert settings.get("FUSEBUILD_OUT", {"FUSEBUILD_OUT": "build/out"}) == "build/out"


def test_the_readme_documents_every_setting():
    lines = set((REPO / "README.md").read_text().splitlines())
    missing = [readme_row(s) for s in settings.SETTINGS.values() if readme_row(s) not in lines]
    assert not missing, "README.md's settings table lacks (or words differently) these rows:\n" + "\n".join(missing)
