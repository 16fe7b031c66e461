"""User-facing errors.

Every problem a user can cause (a bad spec, a bad layout, an unknown target) is raised
as a `FusebuildError` that knows where it happened (file, line, field) and what would be
valid. The command line prints `str(err)` and never a traceback.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass
class FusebuildError(Exception):
    message: str
    path: str | None = None
    line: int | None = None
    field: str | None = None
    valid: str | None = None  # what would be valid, as a short phrase

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = f"{self.path}:{self.line}: " if self.line else f"{self.path}: "
        text = f"{where}{self.field + ': ' if self.field else ''}{self.message}"
        if self.valid:
            text += f" (valid: {self.valid})"
        return text


class SpecError(FusebuildError):
    """A spec file that cannot be loaded, checked or expanded."""


class LayoutError(SpecError):
    """An operand layout that is not a bijection, does not fit its tensor, or breaks a target limit."""


class ToolchainError(FusebuildError):
    """A toolchain step failed (its output is attached to the message)."""


class UseError(FusebuildError):
    """A built operator loaded or called wrongly (runtime/): the path is the artifact or op."""


def did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def one_of(choices) -> str:
    return ", ".join(sorted(str(c) for c in choices))
