"""Schedule hints: each backend declares its hints once, as data.

A `Hint` names one knob of a backend's schedule: its type (an integer), default (None:
the schedule picks one per shape), the values it may take (a range, or choices), and
what it means. The spec loader checks a spec's `schedule:` block against the declaration
(unknown names, out-of-range values: one error each, with what would be valid); the
backend reads the resolved values (declared defaults filled in); the JSON schema and
`docs/architecture.md` show the same table. `tune` lists the values a tuner may try.

A tuner searches the product of every hint's `tune` values; `Rule`s are the constraints
between hints, declared next to them: each says why one combination cannot run (or is
not worth building). `effective`, if a backend declares it, says what its schedule makes
of a combination, so combinations it reduces to the same kernel are built once.
fusebuild/tune/space.py reads all three.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Hint:
    name: str
    meaning: str
    default: int | None = None        # None: chosen by the schedule for each shape
    lo: int = 1
    hi: int = 1 << 16
    choices: tuple = ()               # if set, the only values allowed
    tune: tuple = ()                  # candidate values for tuning

    def valid(self) -> str:
        if self.choices:
            return "one of " + ", ".join(str(c) for c in self.choices)
        return f"an integer in [{self.lo}, {self.hi}]"

    def problem(self, value) -> str | None:
        """Why `value` is not allowed (None if it is)."""
        if not isinstance(value, int) or isinstance(value, bool):
            return f"hint {self.name} must be an integer, got {value!r}"
        if self.choices and value not in self.choices:
            return f"hint {self.name}={value} is not allowed"
        if not self.choices and not self.lo <= value <= self.hi:
            return f"hint {self.name}={value} is out of range"
        return None

    def schema(self) -> dict:
        s = {"type": "integer", "description": self.meaning}
        if self.choices:
            s["enum"] = list(self.choices)
        else:
            s.update(minimum=self.lo, maximum=self.hi)
        return s


@dataclass(frozen=True)
class Rule:
    """A constraint between hints: `check(config, problem)` -> why `config` is left out of a
    tuning space (None: allowed). `config` holds the resolved hints (absent: unset); `problem`
    is a tune.space.Problem (GEMM shapes, dtype, vector lanes, cores of the device). Where a
    spec's hints break it, `fit(config, problem)` says what would apply (None: `meaning`), and
    `hint` is the hint to name ('': the first hint the reason names)."""
    name: str
    meaning: str
    check: object
    fit: object = None
    hint: str = ""


@dataclass(frozen=True)
class HintTable:
    hints: tuple = field(default=())
    rules: tuple = field(default=())          # Rule: constraints between hints, for tuning
    effective: object = None                  # (config, problem) -> what the schedule makes of it:
                                              # configurations with equal results build one kernel

    def __iter__(self):
        return iter(self.hints)

    def __contains__(self, name) -> bool:
        return any(h.name == name for h in self.hints)

    def __getitem__(self, name) -> Hint:
        return next(h for h in self.hints if h.name == name)

    @property
    def names(self) -> tuple:
        return tuple(h.name for h in self.hints)

    def resolve(self, given: dict) -> dict:
        """The hints a backend works with: the spec's values over the declared defaults."""
        out = {h.name: h.default for h in self.hints if h.default is not None}
        out.update(given)
        return out

    def schema(self) -> dict:
        return {"type": "object", "additionalProperties": False,
                "properties": {h.name: h.schema() for h in self.hints}}


def table(*hints: Hint, rules: tuple = (), effective=None) -> HintTable:
    return HintTable(tuple(hints), tuple(rules), effective)
