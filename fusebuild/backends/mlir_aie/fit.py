"""The tiling search: which tile sizes and core counts make a graph fit the NPU.

Hints (`schedule: {mlir-aie: {tile_m, tile_n, tile_k, cores, npu}}`) fix what they
name; the search fills in the rest. Candidates are tried best first: more compute
cores, then bigger tiles (m * n * k; on a tie the taller m, since the weights are
re-read once per row block), and the first that plans (plan.py: divisibility,
cores, data memory, DMA channels, mem-tile memory, buffer descriptors, locks) wins.
Per core-count combination the tile candidates are filtered by the cheap shape check
(`shapes`) before the full plan, which keeps a search in tens of milliseconds.

When the hints do not fit, FitError says which limit fails and lists the nearest
tilings that fit; when nothing fits, it says why the smallest tilings fail. The spec
loader calls `check` (spec.py, via TargetInfo.load_check), so both surface at
`python -m fusebuild check`, not at build time.
"""
from __future__ import annotations

import functools
import itertools
import math

from ...errors import FusebuildError
from .plan import MAC, PLANNING, VEC, PlanError, Tiling, plan
from .structure import DesignError, analyze

HINTS = ("tile_m", "tile_n", "tile_k", "cores")
MAX_TILE = {"m": 256, "n": 512, "k": 512}


class FitError(FusebuildError):
    """No tiling (or not the hinted one) fits the device."""


def device_of(hints) -> str:
    if hints.get("npu") not in (None, 1, 2):
        raise FitError(f"hint npu: {hints['npu']} is not an NPU generation", valid="npu: 1 or npu: 2")
    return "npu1" if hints.get("npu") == 1 else "npu2"


def _divisors(x, step=1, cap=None):
    return [d for d in range(step, min(x, cap or x) + 1, step) if x % d == 0]


def _candidates(st, cols, hints):
    """Tiling candidates, grouped by core counts (most cores first), tiles biggest first."""
    M = st.M
    ms = [hints["tile_m"]] if "tile_m" in hints else _divisors(M, cap=MAX_TILE["m"])[::-1]
    cap_cores = cols * len(PLANNING["core_rows"])
    if st.kind == "elementwise":
        R, C = st.ew.shape
        ns = [hints["tile_n"]] if "tile_n" in hints else _divisors(C, VEC, MAX_TILE["n"])[::-1]
        cores = [(hints["cores"],)] if "cores" in hints else [(c,) for c in range(cols, 0, -1)]
        tiles = [(m, n, 0) for m, n in itertools.product(ms, ns)]
        return [(c, sorted(tiles, key=lambda t: (-t[0] * t[1], -t[1]))) for c in cores]
    host = [g for g in st.groups if g.a_src is None]
    gn = math.gcd(*[g.N for g in host])
    gk = math.gcd(*[g.K for g in host])
    s = MAC[st.dtype][1]
    ns = [hints["tile_n"]] if "tile_n" in hints else _divisors(gn, VEC, MAX_TILE["n"])[::-1]
    ks = [hints["tile_k"]] if "tile_k" in hints else _divisors(gk, s, MAX_TILE["k"])[::-1]
    options = []
    for g in st.groups:
        if "cores" in hints:
            options.append([hints["cores"]])
        elif g.pair is not None:
            options.append([None])          # same as its pair's
        elif g.a_src is None:
            options.append(_divisors(gn // VEC, cap=cap_cores)[::-1])
        else:
            options.append([p for p in _divisors(g.N, cap=cap_cores) if (g.N // p) % VEC == 0][::-1])
    combos = set()
    for combo in itertools.product(*options):
        c = list(combo)
        for g in st.groups:
            if c[g.index] is None:
                c[g.index] = c[g.pair]
        if sum(c) <= cap_cores:
            combos.add(tuple(c))
    # bigger tiles first; among equal volumes a taller m (the weights are re-read M/m times)
    tiles = sorted(itertools.product(ms, ns, ks), key=lambda t: (-t[0] * t[1] * t[2], -t[0], -t[1], -t[2]))
    return [(c, tiles) for c in sorted(combos, key=lambda c: (-sum(c), c))]


def _tiling(c, t):
    return Tiling(t[0], t[1], t[2] or 1, c)


def search(graph, hints: dict):
    """(structure, tiling, plan) of the best fitting tiling, or FitError."""
    try:
        st = analyze(graph)
    except DesignError as err:
        fe = FitError(err.message, valid=err.valid)
        fe.operand = getattr(err, "operand", None)
        raise fe from None
    device = device_of(hints)
    cols = PLANNING["columns"][device]
    given = {k: hints[k] for k in _applicable(st) if k in hints}
    faults = _shape_faults(st)
    if faults:
        rules = " and ".join(dict.fromkeys(r for _, r in faults))
        raise FitError(f"no tiling fits {device}: {'; '.join(f for f, _ in faults)} (the design takes no "
                       f"tails: every tile is whole)", valid=f"{rules} (pad the operands), or another target")
    _check_hints(st, given, device, cols)
    failed = []
    for cores, tiles in _candidates(st, cols, given):
        for t in tiles:
            tiling = _tiling(cores, t)
            try:
                return st, tiling, plan(st, tiling, graph.tensors, device)
            except PlanError as err:
                failed.append((cores, t, err))
                if given and len(given) == len(_applicable(st)):
                    raise _hint_error(st, graph, hints, tiling, err, device) from None
    if given:
        near = _nearest(st, graph, hints, device)
        if failed:
            # the completion of the hints nearest to a tiling that fits (else the smallest): its
            # failure is the one to fix, not the first (biggest) completion's
            if near:
                nc, nt = near[0]
                c, t, err = min(failed, key=lambda f: _distance(f[0], f[1], _values(nc, nt)))
            else:
                c, t, err = min(failed, key=lambda f: (f[1][0] * f[1][1] * (f[1][2] or 1), -sum(f[0])))
            raise _hint_error(st, graph, hints, _tiling(c, t), err, device) from None
        raise _hint_error(st, graph, hints, None, None, device) from None
    raise FitError(f"no tiling fits {device}: {_smallest_failure(st, graph, cols, device)}",
                   valid=_what_fits(st, graph, cols, device))


def _shape_faults(st) -> list:
    """(what, rule) for each dimension no tile can divide: N (or an elementwise group's columns)
    not a multiple of the kernels' vector width, K not a multiple of one aie::mmul step's K."""
    if st.kind == "elementwise":
        R, C = st.ew.shape
        if C % VEC:
            return [(f"{C} columns are not a multiple of {VEC} (tile_n: the kernels' vector width)",
                     f"columns a multiple of {VEC}")]
        return []
    s = MAC[st.dtype][1]
    many = len(st.groups) > 1
    out = []
    for g in st.groups:
        name = f" of '{g.out}'" if many else ""
        if g.N % VEC:
            out.append((f"N={g.N}{name} is not a multiple of {VEC} (tile_n: the kernels' vector width)",
                        f"N a multiple of {VEC}"))
        if g.a_src is None and g.K % s:
            out.append((f"K={g.K}{name} is not a multiple of {s} (tile_k: the K of one {st.dtype} aie::mmul step)",
                        f"K a multiple of {s}"))
    return out


def _what_fits(st, graph, cols, device) -> str:
    """The refusal's `valid`: a float32 graph that fits in bfloat16 (half the bytes of every
    tile and transfer) says so, with the tiling."""
    generic = "smaller shapes, another dtype, or a target without these limits"
    if st.dtype != "float32":
        return generic
    import dataclasses
    half = dataclasses.replace(graph, tensors={n: dataclasses.replace(t, dtype="bfloat16")
                                               for n, t in graph.tensors.items()})
    try:
        st2 = analyze(half)
    except DesignError:
        return generic
    for cores, tiles in _candidates(st2, cols, {}):
        for t in tiles:
            try:
                plan(st2, _tiling(cores, t), half.tensors, device)
            except PlanError:
                continue
            return (f"dtype bfloat16, which fits ({_hints_text(st2, cores, t)}); or smaller shapes, or a target "
                    f"without these limits")
    return generic


def _check_hints(st, given, device, cols):
    """Hints that no tiling can honour, refused with the rule they break."""
    cap = cols * len(PLANNING["core_rows"]) if st.kind == "gemm" else cols
    if given.get("cores", 1) > cap:
        raise FitError(f"hint cores={given['cores']}: {device} has {cap} compute cores for this design",
                       valid=f"cores: 1..{cap}")
    if given.get("tile_n", VEC) % VEC:
        raise FitError(f"hint tile_n={given['tile_n']} is not a multiple of {VEC} (the kernels' vector width)",
                       valid=f"tile_n: a multiple of {VEC}")
    s = MAC[st.dtype][1]
    if st.kind == "gemm" and given.get("tile_k", s) % s:
        raise FitError(f"hint tile_k={given['tile_k']} is not a multiple of {s} (the K of one aie::mmul step)",
                       valid=f"tile_k: a multiple of {s}")
    # each hint must divide its dimension: the user's own hint is what fails, whatever completes it
    if st.kind == "elementwise":
        R, C = st.ew.shape
        dims = [("tile_m", "rows", R, 1, MAX_TILE["m"]), ("tile_n", "columns", C, VEC, MAX_TILE["n"])]
    else:
        host = [g for g in st.groups if g.a_src is None]
        dims = [("tile_m", "M", st.M, 1, MAX_TILE["m"])]
        dims += [("tile_n", f"N={g.N} of '{g.out}'" if len(host) > 1 else "N", g.N, VEC, MAX_TILE["n"])
                 for g in host]
        dims += [("tile_k", f"K={g.K} of '{g.out}'" if len(host) > 1 else "K", g.K, s, MAX_TILE["k"])
                 for g in host]
    for hint, what, x, step, cap in dims:
        if hint in given and x % given[hint]:
            what = what if "=" in what else f"{what}={x}"
            ok = _divisors(x, step, cap)
            valid = (f"{hint}: a divisor of {x} that is a multiple of {step} ({', '.join(map(str, ok))})"
                     if step > 1 else f"{hint}: a divisor of {x} ({', '.join(map(str, ok))})")
            if not ok:
                valid = f"none: {x} has no divisor that is a multiple of {step}; pad the operands to a multiple"
            raise FitError(f"hint {hint}={given[hint]} does not divide {what}"
                           + (f" in multiples of {step}" if step > 1 else ""), valid=valid)


def _applicable(st):
    return ("tile_m", "tile_n", "cores") if st.kind == "elementwise" else HINTS


def _smallest_failure(st, graph, cols, device) -> str:
    """Why the smallest tiles fail, with the most cores and with the fewest."""
    combos = _candidates(st, cols, {})
    if not combos or not combos[0][1]:
        return f"no tile size divides the shape (tile_n must be a multiple of {VEC}, tile_m a divisor of M)"
    smallest = min(combos[0][1], key=lambda t: (t[0] * t[1] * (t[2] or 1), t))
    out = []
    for what, (cores, _) in (("the most cores", combos[0]), ("the fewest", combos[-1])):
        tiling = _tiling(cores, smallest)
        try:
            plan(st, tiling, graph.tensors, device)
        except PlanError as err:
            out.append(f"with the smallest tiles and {what} ({tiling.text()}): {err.message}")
    return "; ".join(out) if out else "every candidate tiling breaks a limit"


def _hint_error(st, graph, hints, tiling, err, device):
    what = tiling.text() if tiling else ", ".join(f"{k}={hints[k]}" for k in HINTS if k in hints)
    why = err.message if err else "no tiling matches these hints"
    near = nearest(st, graph, hints, device)
    valid = ("nearest tilings that fit: " + "; ".join(near)) if near else "no tiling fits this graph at all"
    return FitError(f"schedule hints {what} do not fit {device}: {why}", valid=valid)


def _values(c, t) -> dict:
    return {"tile_m": t[0], "tile_n": t[1], "tile_k": t[2], "cores": max(c)}


def _distance(c, t, hints) -> float:
    """log2 distance of a candidate to the hinted values."""
    return sum(abs(math.log2(v) - math.log2(hints[key])) for key, v in _values(c, t).items()
               if key in hints and v and hints[key])


@functools.lru_cache(maxsize=64)
def _nearest_cached(digest, hints_key, graph_holder, device, count):
    st, graph, hints = analyze(graph_holder.graph), graph_holder.graph, dict(hints_key)
    cols = PLANNING["columns"][device]
    cands = sorted(((_distance(c, t, hints), c, t) for c, tiles in _candidates(st, cols, {}) for t in tiles),
                   key=lambda x: (x[0], -sum(x[1])))
    found = []
    for _, c, t in cands:
        try:
            plan(st, _tiling(c, t), graph.tensors, device)
        except PlanError:
            continue
        found.append((c, t))
        if len(found) == count:
            break
    return tuple(found)


def _nearest(st, graph, hints, device, count=3) -> tuple:
    """(cores, tile) of the tilings that fit, closest to the hints."""
    key = tuple(sorted((k, v) for k, v in hints.items() if k in HINTS))
    return _nearest_cached(graph.digest(), key, _Holder(graph), device, count)


def nearest(st, graph, hints, device, count=3) -> list:
    """Tilings that fit, closest to the hints (log2 distance over the hinted values)."""
    return [_hints_text(st, c, t) for c, t in _nearest(st, graph, hints, device, count)]


def _hints_text(st, c, t) -> str:
    cores = c[0] if len(set(c)) == 1 else "/".join(map(str, c))
    k = f" tile_k={t[2]}" if st.kind == "gemm" else ""
    return f"tile_m={t[0]} tile_n={t[1]}{k} cores={cores}"


@functools.lru_cache(maxsize=256)
def _cached(digest, hints_key, graph_holder):
    return search(graph_holder.graph, dict(hints_key))


class _Holder:
    def __init__(self, graph):
        self.graph = graph

    def __hash__(self):
        return hash(self.graph.digest())

    def __eq__(self, other):
        return self.graph.digest() == other.graph.digest()


def fit(graph, hints: dict):
    """search(), memoized per (graph, hints) within a process."""
    key = tuple(sorted((k, v) for k, v in hints.items()))
    return _cached(graph.digest(), key, _Holder(graph))


def check(graph, hints: dict) -> list:
    """The spec loader's check: raises FitError when the graph cannot be rendered as hinted; a
    refusal caused by an operand (a full-shape epilogue operand) is returned as a Limit on the
    node that reads it, so the loader points at that graph entry, not at the schedule."""
    try:
        fit(graph, hints)
    except FitError as err:
        operand = getattr(err, "operand", None)
        readers = [n.output for n in graph.nodes if operand and operand in n.inputs]
        if not readers:
            raise
        from ..limits import Limit
        return [Limit(err.message, err.valid or "", node=readers[0])]
    return []
