"""Dynamic parameters: a size known only at run time, declared with a range.

    params:
      M: {dynamic: [1, 4096]}                        # M takes any value in [1, 4096] at run time
      M: {dynamic: [1, 4096], buckets: [1, 32, 4096], validate: [77, 1000]}

A dynamic parameter may only stand for a whole dimension of a shape (`[M, K]`, never
`2*M` or `$M`), so every tensor dimension is either static or exactly that parameter
(ir/symbols.py).

How a target gets it (its TargetInfo.dynamic):
  dynamic targets   build ONE artifact that takes M at run time (variant `M1to4096_...`);
  static targets    build one ordinary static variant per bucket (`M1_...`, `M2_...`),
                    a request for M runs on the smallest bucket >= M. Buckets are the
                    spec's `buckets:` (ascending, in the range, ending at the maximum)
                    or, by default, the powers of two in the range plus the maximum.
Validation runs a dynamic artifact at several sizes (`samples`): the minimum, a prime
inside the range (sizes that divide no tile), the maximum, and the spec's `validate:`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import did_you_mean, one_of
from .yamlio import quote

FIELDS = {
    "dynamic": "[lo, hi]: the sizes this parameter may take at run time (1 <= lo < hi)",
    "buckets": "static sizes for targets that need static shapes (ascending, in the range, last = hi)",
    "validate": "extra sizes validation runs the dynamic artifact at (in the range)",
}


@dataclass(frozen=True)
class Dynamic:
    name: str
    lo: int
    hi: int
    buckets: tuple          # static sizes for targets without dynamic shapes, ascending, ending at hi
    samples: tuple          # sizes validation runs a dynamic artifact at, ascending
    line: int

    @property
    def tag(self) -> str:
        """How it shows in a variant name: M1to4096."""
        return f"{self.name}{self.lo}to{self.hi}"

    def serves(self, bucket: int) -> tuple:
        """(lo, hi) of the sizes that run on `bucket` (padded up to it)."""
        i = self.buckets.index(bucket)
        return (self.buckets[i - 1] + 1 if i else self.lo, bucket)


def is_declaration(value) -> bool:
    """A mapping parameter value declares a dynamic parameter (anything else is a value list)."""
    return isinstance(value, dict)


def parse(name: str, value: dict, line: int, fail) -> Dynamic:
    """Check one `{dynamic: [lo, hi], ...}` declaration. `fail(message, line, field, valid)` raises."""
    field = f"params.{name}"
    for key in value:
        if key not in FIELDS:
            fail(f"unknown field '{key}' of a dynamic parameter{did_you_mean(key, FIELDS)}",
                 _line(value, key, line), f"{field}.{key}", one_of(FIELDS))
    if "dynamic" not in value:
        fail("a mapping declares a dynamic parameter and needs 'dynamic: [lo, hi]'", line, field,
             "M: {dynamic: [1, 4096]}, or a value or list of values")
    rng = value["dynamic"]
    dline = _line(value, "dynamic", line)
    if not (isinstance(rng, list) and len(rng) == 2 and all(_posint(v) for v in rng) and rng[0] < rng[1]):
        fail(f"expected [lo, hi] with 1 <= lo < hi, got {quote(rng)}", dline, f"{field}.dynamic",
             "two positive integers, lo < hi (a single size is a plain value: M: 128)")
    lo, hi = rng
    buckets = _sizes(value, "buckets", lo, hi, field, line, fail)
    if buckets is None:
        buckets = default_buckets(lo, hi)
    else:
        bline = _line(value, "buckets", line)
        if list(buckets) != sorted(set(buckets)):
            fail(f"buckets {list(buckets)} must be strictly ascending", bline, f"{field}.buckets",
                 "ascending sizes without repeats")
        if buckets[-1] != hi:
            fail(f"the largest bucket is {buckets[-1]}, so sizes {buckets[-1] + 1}..{hi} would have no artifact",
                 bline, f"{field}.buckets", f"buckets ending at the maximum {hi}")
    extra = _sizes(value, "validate", lo, hi, field, line, fail) or ()
    return Dynamic(name, lo, hi, tuple(buckets), samples(lo, hi, extra), line)


def default_buckets(lo: int, hi: int) -> tuple:
    """Powers of two in [lo, hi], plus hi (and lo's bucket: the first power of two >= lo)."""
    out, p = [], 1
    while p < hi:
        if p >= lo:
            out.append(p)
        p *= 2
    return tuple(out + [hi])


def samples(lo: int, hi: int, extra=()) -> tuple:
    """The minimum, a prime inside the range (below the geometric middle, so it stays
    cheap while dividing no tile size), the maximum, and the extra sizes."""
    picks = {lo, hi, *extra}
    prime = _prime_at_most(max(lo + 1, math.isqrt(lo * hi)), lo + 1)
    if prime is not None and prime < hi:
        picks.add(prime)
    return tuple(sorted(picks))


def _prime_at_most(n: int, floor: int):
    for p in range(n, floor - 1, -1):
        if p > 2 and all(p % d for d in range(2, math.isqrt(p) + 1)):
            return p
    return None


def _sizes(value, key, lo, hi, field, line, fail):
    if key not in value:
        return None
    sizes, kline = value[key], _line(value, key, line)
    if not isinstance(sizes, list) or not sizes:
        fail(f"expected a non-empty list of sizes, got {quote(sizes)}", kline, f"{field}.{key}", FIELDS[key])
    bad = [v for v in sizes if not _posint(v)]
    if bad:
        fail(f"{quote(bad[0])} is not a size: sizes are positive integers", kline, f"{field}.{key}", FIELDS[key])
    bad = [v for v in sizes if not lo <= v <= hi]
    if bad:
        fail(f"size {bad[0]} is outside the dynamic range [{lo}, {hi}]", kline, f"{field}.{key}",
             f"sizes in [{lo}, {hi}]")
    return tuple(sizes)


def _posint(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _line(mapping, key, default) -> int:
    return mapping.line_of(key) if hasattr(mapping, "line_of") else default


def check_lines(spec) -> list:
    """What `fusebuild check` says about a spec's dynamic parameters: which targets build
    one artifact, which expand into buckets (and which), and the validated sizes."""
    dynamic = [v for v in spec.variants if v.dynamic]
    buckets = [v for v in spec.variants if v.serves]
    params = sorted({p for v in dynamic for p in v.dynamic} | {p for v in buckets for p in v.serves})
    lines = []
    for p in params:
        lo, hi = next((v.dynamic[p] for v in dynamic if p in v.dynamic), (None, None))
        if lo is None:
            served = [v.serves[p] for v in buckets if p in v.serves]
            lo, hi = min(s[0] for s in served), max(s[1] for s in served)
        one = sorted({t for v in dynamic if p in v.dynamic for t in v.targets})
        sizes = sorted({s[p] for v in dynamic for s in v.samples if p in s})
        text = f"{spec.name}: {p} is dynamic in [{lo}, {hi}]"
        if one:
            text += f"; {', '.join(one)}: one artifact taking {p} at run time, validated at {p} = " \
                    f"{', '.join(map(str, sizes))}"
        by_target = {}
        for v in buckets:
            for t in v.targets:
                by_target.setdefault(t, set()).add(v.params[p])
        for t, got in sorted(by_target.items()):
            text += f"; {t}: static shapes only, expanded into buckets {p} = {', '.join(map(str, sorted(got)))}"
            gaps = uncovered(lo, hi, got)
            if gaps:        # a target filter that drops buckets leaves sizes with no artifact
                text += f" (no {t} artifact for {p} = {', '.join(f'{a}..{b}' if a < b else str(a) for a, b in gaps)})"
        lines.append(text)
    return lines


def uncovered(lo: int, hi: int, built) -> list:
    """[(a, b)]: the sizes in [lo, hi] that no built bucket serves. A size runs on the smallest
    bucket >= it, so a target filter that keeps only some buckets ({M: [1, 16]}) still serves
    every size up to its largest one, and none above it."""
    top = max(built)
    return [(top + 1, hi)] if top < hi else []


def variant_note(v) -> str:
    """The per-variant suffix of `fusebuild check` for a dynamic or bucket variant."""
    if v.dynamic:
        return "; " + ", ".join(f"{p} dynamic in [{lo}, {hi}]" for p, (lo, hi) in v.dynamic.items())
    if v.serves:
        return "; " + ", ".join(f"bucket of {p}: serves {p} = {lo}..{hi}" for p, (lo, hi) in v.serves.items())
    return ""
