"""Specs are data (issue 15, item 1): no spec-derived free text reaches generated source.

Every shipped spec is rendered for every target it names twice: once as shipped, once with
a hostile file path, description and YAML comments (code for each target language, quotes,
newlines, Jinja syntax). The generated files must be byte-identical, so nothing but validated
identifiers and numbers can reach them; the hostile marker must appear in none.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from fusebuild.backends import TARGETS, get_backend
from fusebuild.backends.base import RenderJob
from fusebuild.spec import load_spec

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted((REPO / "specs").glob("*.yaml"))
MARK = "PWNMARK"
# no control characters (those are refused in file names): quotes, $( ), backticks, ;, Jinja
HOSTILE_NAME = f"{MARK} '\"$(touch PWNED)`id`;{{{{7*7}}}}{{% raw %}} .yaml"
HOSTILE_TEXT = (f"{MARK}\\n@__import__('os').system('touch PWNED')\\ndef f(): pass\\n*/ // {{{{ 7*7 }}}} "
                f"\\\"); system(\\\"id\\\"); //")


def hostile_copy(src: Path, folder: Path) -> Path:
    text = src.read_text()
    if "\ndescription:" not in "\n" + text:
        text = "description: x\n" + text
    out = folder / HOSTILE_NAME
    out.write_text(f"# {MARK} {{{{ 7*7 }}}} */ \"\"\" '''\n" + _set_description(text) + f"# {MARK}\n")
    return out


def _set_description(text: str) -> str:
    """The spec with its description replaced by the hostile one (a folded block or one line)."""
    out, skip = [], False
    for line in text.splitlines(keepends=True):
        if skip and line.startswith("  "):
            continue
        skip = False
        if line.startswith("description:"):
            skip = line.rstrip().endswith(">")
            out.append(f'description: "{HOSTILE_TEXT}"\n')
            continue
        out.append(line)
    return "".join(out)


def rendered(spec) -> dict:
    files = {}
    for v in spec.variants:
        for target in v.targets:
            backend = get_backend(target)
            job = RenderJob(v.graph, TARGETS[target].hints.resolve(v.schedule.get(target, {})), v.spec, v.name)
            for name, text in backend.render(job).files.items():
                files[f"{v.name}/{target}/{name}"] = text
    return files


@pytest.mark.parametrize("src", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_no_spec_free_text_reaches_generated_source(src, tmp_path):
    plain = load_spec(src)
    hostile_path = hostile_copy(src, tmp_path)
    hostile = load_spec(hostile_path)
    assert MARK in hostile.description and MARK in hostile.path      # the hostile text did load
    a, b = rendered(plain), rendered(hostile)
    assert a.keys() == b.keys() and a
    for name in a:
        assert MARK not in b[name] and "PWNED" not in b[name] and str(tmp_path) not in b[name], name
        assert a[name] == b[name], name
    # every target of the spec was rendered
    assert {k.split("/")[1] for k in a} == {t for v in plain.variants for t in v.targets}


def test_templates_use_no_free_text_variables():
    """No template reads a spec's path, description or any other free text."""
    import re
    for path in sorted((REPO / "templates").rglob("*.j2")):
        text = path.read_text()
        used = set(re.findall(r"{{-?\s*(\w+)", text)) | set(re.findall(r"{%-?\s*(?:if|for \w+ in)\s+(\w+)", text))
        assert not used & {"path", "description", "spec_path", "file", "filename", "text"}, path
