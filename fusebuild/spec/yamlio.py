"""Safe YAML loading that remembers where each value came from.

Specs are data: only `yaml.SafeLoader` constructors run (no tags that build objects).
Mappings and sequences come back as `Located` dict/list subclasses carrying the line
of the node and of each key/item, so errors can name `file:line`.

Bounded work (spec/limits.py): before anything is constructed, the composed document is
measured without recursion: nesting depth, and the number of values once aliases are
expanded (an alias bomb of a few hundred bytes names billions), and recursive aliases
are refused. Integer literals longer than any size or seed are refused before `int()`
parses them. Floats in exponent form without a dot (`1e-3`, which YAML 1.1 reads as a
string) are floats, as in YAML 1.2. Reader errors (control characters, NUL) name their line.
An error raised while a value is built (a 30-digit integer, a duplicate key) names the
field it sits under (`seed`, `params.M[1]`).

`quote` is errors.quote spelling values as the spec wrote them: null, true, false, .inf.
"""
from __future__ import annotations

import re

import yaml

from ..errors import SpecError, _Repr, printable
from . import limits


class _YamlRepr(_Repr):
    """errors.quote's bounded repr, with YAML's spelling of the scalars Python spells otherwise."""

    def repr_NoneType(self, x, level):
        return "null"

    def repr_bool(self, x, level):
        return "true" if x else "false"

    def repr_float(self, x, level):
        if x != x:
            return ".nan"
        if x in (float("inf"), float("-inf")):
            return ".inf" if x > 0 else "-.inf"
        return repr(x)


_YREPR = _YamlRepr()


def quote(value) -> str:
    """A spec value as it may appear in a message, as YAML writes it (null, not None): a
    bounded repr, control characters escaped (errors.quote otherwise)."""
    return printable(_YREPR.repr(value))


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
    def construct_document(self, node):
        _measure(node)
        return super().construct_document(node)


def _children(node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [x for pair in node.value for x in pair]
    return []


def _measure(root) -> None:
    """Depth and alias-expanded size of a composed document, iteratively (post-order,
    memoized per node, so shared nodes are counted as often as they are used but
    visited once). Raises SpecError at the first limit broken."""
    size, depth, open_ = {}, {}, set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_.discard(key)
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            line = node.start_mark.line + 1
            if depth[key] > limits.MAX_YAML_DEPTH:
                raise SpecError(f"values nested more than {limits.MAX_YAML_DEPTH} deep", line=line,
                                valid=f"at most {limits.MAX_YAML_DEPTH} levels of mappings and lists")
            if size[key] > limits.MAX_YAML_VALUES:
                raise SpecError(f"the document expands to more than {limits.MAX_YAML_VALUES} values "
                                "(YAML aliases are expanded where they are used)", line=line,
                                valid=f"at most {limits.MAX_YAML_VALUES} values after alias expansion")
            continue
        if key in size:
            continue
        if key in open_:
            raise SpecError("recursive YAML alias (a value that contains itself)", line=node.start_mark.line + 1,
                            valid="aliases of values defined before and outside them")
        open_.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in _children(node) if id(k) not in size)


def _int(loader, node):
    digits = node.value.replace("_", "").lstrip("+-")
    if len(digits) > limits.MAX_INT_DIGITS:
        raise SpecError(f"an integer literal of {len(digits)} digits", line=node.start_mark.line + 1,
                        valid=f"integers of at most {limits.MAX_INT_DIGITS} digits")
    return loader.construct_yaml_int(node)


# YAML 1.2 floats that YAML 1.1 reads as strings: an exponent without a dot (1e-3, 2E5)
_EXP_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")
_LineLoader.add_implicit_resolver("tag:yaml.org,2002:float", _EXP_FLOAT, list("-+0123456789"))
_LineLoader.add_constructor("tag:yaml.org,2002:int", _int)


def _mapping(loader, node):
    loader.flatten_mapping(node)
    out = LDict()
    out.line, out.key_lines = node.start_mark.line + 1, {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) or key is None:
            raise SpecError(f"a mapping key must be a plain name, got {quote(key)}", line=key_node.start_mark.line + 1)
        if key in out:
            err = SpecError(f"duplicate key {quote(key)}", line=key_node.start_mark.line + 1,
                            valid="each key once per mapping")
            _under(err, key)
            raise err
        try:
            out[key] = loader.construct_object(value_node, deep=True)
        except SpecError as err:
            _under(err, key)
            raise
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _sequence(loader, node):
    out = LList()
    for i, child in enumerate(node.value):
        try:
            out.append(loader.construct_object(child, deep=True))
        except SpecError as err:
            _under(err, i, index=True)
            raise
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}")


def _under(err: SpecError, key, index: bool = False) -> None:
    """Name the field of an error raised while building a value: the key (or [index]) it
    sits under, prefixed by each enclosing one on the way out (`params.M[1]`)."""
    if err.field is not None and not getattr(err, "yaml_path", False):
        return                                  # a field set by whoever raised it
    if index:
        part = f"[{key}]"
    else:
        text = str(key)
        part = text if _PLAIN_KEY.fullmatch(text) else quote(key)
    inner = err.field or ""
    err.field = part + ("." if inner and not inner.startswith("[") else "") + inner
    err.yaml_path = True


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
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, err.position) + 1 if isinstance(err.position, int) else None
        char = chr(err.character) if isinstance(err.character, int) else err.character
        raise SpecError(f"YAML: {err.reason}: {char!r}", path=path, line=line,
                        valid="printable text (tabs and newlines only as whitespace)") from None
    except yaml.YAMLError as err:
        raise SpecError(f"YAML error: {type(err).__name__}", path=path) from None
