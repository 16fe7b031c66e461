"""User-facing errors.

Every problem a user can cause (a bad spec, a bad layout, an unknown target) is raised
as a `FusebuildError` that knows where it happened (file, line, field) and what would be
valid. The command line prints `str(err)` and never a traceback.

Spec values reach messages only through `quote` (a bounded repr: control characters
escaped, long or deeply nested values cut), and `str(err)` escapes any control character
left in the path, field or message (newlines too: an error is one line, except a
toolchain's diagnostics), so a name holding terminal escape sequences (or a YAML alias
bomb) can neither drive the user's terminal, forge a line of output, nor make a message huge.
"""
from __future__ import annotations

import difflib
import reprlib
from dataclasses import dataclass


@dataclass
class FusebuildError(Exception):
    message: str
    path: str | None = None
    line: int | None = None
    field: str | None = None
    valid: str | None = None  # what would be valid, as a short phrase

    KEEP = ""                 # control characters a message may show as they are (none: one line)

    def __str__(self) -> str:
        where = ""
        if self.path:
            path = printable(str(self.path), keep="")
            where = f"{path}:{self.line}: " if self.line else f"{path}: "
        field = printable(str(self.field), keep="") + ": " if self.field else ""
        text = f"{where}{field}{printable(str(self.message), keep=self.KEEP)}"
        if self.valid:
            text += f" (valid: {printable(str(self.valid), keep='')})"
        return text


class SpecError(FusebuildError):
    """A spec file that cannot be loaded, checked or expanded."""


class LayoutError(SpecError):
    """An operand layout that is not a bijection, does not fit its tensor, or breaks a target limit."""


class ToolchainError(FusebuildError):
    """A toolchain step failed (its output is attached to the message)."""

    KEEP = "\n"              # a toolchain's diagnostics keep their lines


class UseError(FusebuildError):
    """A built operator loaded or called wrongly (runtime/): the path is the artifact or op."""


def did_you_mean(word: str, choices) -> str:
    if not isinstance(word, (str, int, float)) or len(str(word)) > 64:   # bounded work on hostile values
        return ""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


class _Repr(reprlib.Repr):
    """reprlib with limits on every level, knowing the YAML loader's dict/list subclasses
    (reprlib looks methods up by type name; without these it would fall back to the full,
    unbounded repr of an alias bomb)."""

    def __init__(self):
        super().__init__()
        self.maxlevel, self.maxdict, self.maxlist, self.maxtuple, self.maxset = 3, 4, 6, 6, 6
        self.maxstring, self.maxother, self.maxlong = 60, 60, 40

    def repr_LDict(self, x, level):
        return self.repr_dict(x, level)

    def repr_LList(self, x, level):
        return self.repr_list(x, level)

    def repr_int(self, x, level):
        if x.bit_length() > 128:            # repr() of a huge int is slow, or refused (4300 digits)
            return f"<an integer of {x.bit_length()} bits>"
        return super().repr_int(x, level)


_REPR = _Repr()


def quote(value) -> str:
    """A spec value as it may appear in a message: a bounded repr, control characters escaped."""
    return printable(_REPR.repr(value))


def printable(text: str, keep: str = "\n") -> str:
    """`text` with control and format characters (ESC, CSI, NUL, bidi overrides...)
    written as escapes, so they are shown, never acted on; `keep` lists characters left
    alone ("\n" by default: multi-line toolchain output stays readable)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep or c == " " else _escape(c) for c in text)


def _escape(c: str) -> str:
    if c in "\n\t\r":
        return repr(c)[1:-1]
    o = ord(c)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


def one_of(choices) -> str:
    return ", ".join(sorted(str(c) for c in choices))
