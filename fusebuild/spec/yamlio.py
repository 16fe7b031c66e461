"""Safe YAML loading that remembers where each value came from.

Specs are data: only `yaml.SafeLoader` constructors run (no tags that build objects).
Mappings and sequences come back as `Located` dict/list subclasses carrying the line
of the node and of each key/item, so errors can name `file:line`.
"""
from __future__ import annotations

import yaml

from ..errors import SpecError


class LDict(dict):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.line, self.key_lines = 0, {}

    def line_of(self, key) -> int:
        return self.key_lines.get(key, self.line)


class LList(list):
    def __init__(self, *args):
        super().__init__(*args)
        self.line, self.item_lines = 0, []

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line


# libyaml's parser when present (about 10x faster: a 1,000-task project loads its specs in
# milliseconds); constructors stay SafeConstructor's either way.
class _LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    pass


def _mapping(loader, node):
    loader.flatten_mapping(node)
    out = LDict()
    out.line, out.key_lines = node.start_mark.line + 1, {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) or key is None:
            raise SpecError(f"a mapping key must be a plain name, got {key!r}", line=key_node.start_mark.line + 1)
        if key in out:
            raise SpecError(f"duplicate key '{key}'", line=key_node.start_mark.line + 1, field=str(key),
                            valid="each key once per mapping")
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _sequence(loader, node):
    out = LList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def load_yaml(text: str, path: str):
    """Parse YAML text; raise SpecError with the file and line on any syntax error."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except SpecError as err:
        err.path = path
        raise
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else None
        problem = " ".join(str(p) for p in (err.context, err.problem) if p)
        raise SpecError(f"YAML syntax error: {problem}", path=path, line=line,
                        valid="well-formed YAML (check indentation, colons and brackets)") from None
    except yaml.YAMLError as err:
        raise SpecError(f"YAML error: {err}", path=path) from None
