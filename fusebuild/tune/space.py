"""A target's tuning space for one problem: which hint configurations are worth building.

The space is data, read from the backend's hints declaration (backends/<x>/hints.py):
  dimensions  every hint with `tune` values (or values an adapter adds: ADAPTERS, for a
              backend whose folder cannot say it yet); `--space name=v1,v2` replaces them
              (and then only the named hints are searched)
  rules       the backend's `Rule`s (HintTable.rules, plus an adapter's): a configuration a
              rule rejects is left out, with the reason counted
  effective   what the backend's schedule makes of a configuration (HintTable.effective):
              configurations it reduces to the same kernel are one candidate (the first)
  relevance   an adapter may say a hint does not apply to a problem (SwiGLU-only hints on a
              plain GEMM): it is not searched there
  seeds       an adapter may name the backend's own candidate configurations (tir-cuda's
              tiles.candidates): they come right after the base
  the check   the target's load-time check (TargetInfo.check, pure Python) runs on every
              configuration taken: one the backend would refuse to render is not built
A configuration is the full set of resolved hints (the spec's values over the declared
defaults, with the searched ones replaced); its identity is the digest of that dict, so a
configuration is the same candidate whichever space produced it.

Order: the base configuration (what a build without tuning uses: the spec's hints, else the
defaults) always comes first: it is what tuning has to beat. The rest follow in a random
order seeded by the problem (random search), reordered so that every value of every hint
appears as early as possible (coverage first: a small budget still sees data tiling on and
off, every tile size), and a budget keeps the first N. A space with more than ENUMERATE
combinations (tir-cuda's SwiGLU: two kernels' hints) is sampled, seeded, instead of walked.
Growing the budget adds candidates at the end of the same order; the ones already recorded
are not measured again.
"""
from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field

from ..errors import FusebuildError
from ..hashing import digest
from ..ir.dtypes import DTYPES
from ..ir.graph import fuse


@dataclass(frozen=True)
class Gemm:
    m: int
    n: int
    k: int
    transpose_b: bool
    a: str = ""                   # the A operand's tensor (SwiGLU's two GEMMs share it)


@dataclass(frozen=True)
class Problem:
    """What the rules may look at: the GEMMs of the fused graph, its dtype, and the device."""
    gemms: tuple
    dtype: str
    lanes: int = 16               # SIMD lanes of `dtype` (CPU)
    vector_registers: int = 32    # architectural vector registers (CPU)
    cores: int = 1

    @property
    def bytes(self) -> int:
        return DTYPES[self.dtype].bytes

    @staticmethod
    def of(graph, cores: int = 1, vector_bits: int = 512) -> Problem:
        """A dynamic M is its range's maximum (Tensor.shape holds it): rules that bound a tile
        by the problem hold for every M in the range; smaller M take partial tiles (mlir-cpu's
        row functions and `?` dimensions, tir-cpu's rows/tiles dispatch)."""
        gemms = []
        for g in fuse(graph):
            if g.matmul is not None:
                a = g.matmul.inputs[0]
                m, n = graph.tensors[g.matmul.output].shape
                gemms.append(Gemm(m, n, graph.tensors[a].shape[1], bool(g.matmul.attr["transpose_b"]), a))
        dtype = graph.tensors[graph.outputs[0]].dtype
        lanes = max(1, vector_bits // DTYPES[dtype].bits)
        return Problem(tuple(gemms), dtype, lanes, 32 if vector_bits >= 512 else 16, cores)


@dataclass(frozen=True)
class Adapter:
    """What a backend's hints.py does not (yet) say about tuning, kept outside its folder."""
    values: dict = field(default_factory=dict)    # hint -> candidate values (if it declares none)
    rules: tuple = ()                             # more backends.hints.Rule
    relevant: object = None                       # (hint name, Problem) -> bool
    seeds: object = None                          # (graph) -> [hints]: the backend's own candidates


def _adapters() -> dict:
    from .cuda import ADAPTER as CUDA
    return {"tir-cuda": CUDA}


def config_id(config: dict) -> str:
    return digest(dict(sorted(config.items())))[:12]


def show(config: dict, names=None) -> str:
    """`tile_m=128 tile_n=96`: the hints set (only `names`, if given, in their order)."""
    keys = [k for k in (names if names is not None else sorted(config)) if config.get(k) is not None]
    return " ".join(f"{k}={config[k]}" for k in keys) or "(defaults)"


ENUMERATE = 30000          # combinations checked per problem: all of them, or this many drawn


class SpaceError(FusebuildError):
    """A --space override that names no such hint or gives a value it does not take."""


@dataclass
class Space:
    target: str
    table: object                 # backends.hints.HintTable
    values: dict                  # searched hint -> candidate values
    rules: tuple
    relevant: object = None
    info: object = None           # backends.TargetInfo: its load-time check (TargetInfo.check)
    seeds: object = None

    @staticmethod
    def of(info, overrides: dict | None = None) -> Space:
        """The space of a target (a backends.TargetInfo); `overrides` = {hint: values} from --space."""
        adapter = _adapters().get(info.name, Adapter())
        table = info.hints
        tunable = _tunable(table, adapter)
        if overrides:
            for name, vals in overrides.items():
                if name not in tunable:         # the others are part of the problem (Space.pinned)
                    raise SpaceError(f"--space: {info.name} has no tunable hint {name!r}",
                                     valid=", ".join(tunable) or "(none)")
                for v in vals:
                    bad = table[name].problem(v)
                    if bad:
                        raise SpaceError(f"--space: {bad}", valid=table[name].valid())
            values = {k: tuple(v) for k, v in overrides.items()}
        else:
            values = {h.name: tuple(h.tune) for h in table if h.tune}
            for k, v in adapter.values.items():
                if k in table and k not in values:
                    values[k] = tuple(x for x in v if table[k].problem(x) is None)
        return Space(info.name, table, values, tuple(table.rules) + tuple(adapter.rules), adapter.relevant, info,
                     None if overrides else adapter.seeds)

    @property
    def searched(self) -> tuple:
        return tuple(self.values)

    def searched_for(self, problem: Problem) -> tuple:
        """The hints searched for this problem (the adapter's relevance applied)."""
        return tuple(n for n in self.values if self.relevant is None or self.relevant(n, problem))

    def pinned(self, given: dict) -> dict:
        """The spec's hints that tuning never changes (part of the problem)."""
        tunable = _tunable(self.table, _adapters().get(self.target, Adapter()))
        return {k: v for k, v in given.items() if k not in tunable}

    def effective(self, config: dict, problem: Problem) -> dict:
        """What the backend's schedule makes of `config` (the config itself if it does not say)."""
        return self.table.effective(config, problem) if self.table.effective else config

    def why_not(self, config: dict, problem: Problem) -> str | None:
        for rule in self.rules:
            why = rule.check(config, problem)
            if why:
                return f"{rule.name}: {why}"
        return None

    def candidates(self, given: dict, problem: Problem, seed: str, budget: int | None = None, graph=None) -> tuple:
        """([config, ...] base first, {rule: how many configurations it left out}); configurations
        the schedule reduces to an earlier one are dropped silently (they are the same kernel)."""
        base = self.table.resolve(given)
        dims = [(name, _unique((base.get(name), *vals))) for name, vals in self.values.items()
                if self.relevant is None or self.relevant(name, problem)]
        out, seen, rejected = [base], {config_id(self.effective(base, problem))}, {}
        rest = []
        for combo in _combos([vals for _, vals in dims], seed):
            cfg = dict(base)
            for (name, _), v in zip(dims, combo):
                if v is None:
                    cfg.pop(name, None)
                else:
                    cfg[name] = v
            cid = config_id(self.effective(cfg, problem))
            if cid in seen:
                continue
            seen.add(cid)
            why = self.why_not(cfg, problem)
            if why:
                rule = why.split(":", 1)[0]
                rejected[rule] = rejected.get(rule, 0) + 1
                continue
            rest.append(cfg)
        random.Random(seed).shuffle(rest)
        ordered = self._seeded(graph, base, problem, seen, rejected) + _coverage_first(
            rest, [name for name, _ in dims], base, budget)
        limit = None if budget is None else max(1, budget)
        for cfg in ordered:                        # the backend's own check, on what would be taken
            if limit is not None and len(out) >= limit:
                break
            why = self._backend_problem(graph, cfg)
            if why:
                rejected[f"{self.target} check"] = rejected.get(f"{self.target} check", 0) + 1
                continue
            out.append(cfg)
        return out, rejected

    def _seeded(self, graph, base: dict, problem: Problem, seen: set, rejected: dict) -> list:
        """The backend's own candidate configurations (an adapter's `seeds`), right after the
        base: known-good points of its design space, under the same rules."""
        if graph is None or self.seeds is None:
            return []
        out = []
        for hints in self.seeds(graph):
            cfg = dict(base, **{k: v for k, v in hints.items() if k in self.table and not self.table[k].problem(v)})
            cid = config_id(self.effective(cfg, problem))
            if cid in seen or self.why_not(cfg, problem):
                continue
            seen.add(cid)
            out.append(cfg)
        return out

    def _backend_problem(self, graph, cfg: dict) -> str | None:
        """What the target's load-time check (TargetInfo.check: pure, no toolchain) says
        rendering `graph` with `cfg` would hit, or None."""
        if graph is None or self.info is None:
            return None
        try:
            problems = self.info.check(graph, cfg)
        except FusebuildError as err:
            return str(err)
        return str(problems[0]) if problems else None


def _combos(values: list, seed: str):
    """Every combination of `values`, or, past ENUMERATE of them, that many drawn at random
    (seeded: the same draw every time, so a grown budget extends the same order)."""
    total = math.prod(len(v) for v in values)
    if total <= ENUMERATE:
        yield from itertools.product(*values)
        return
    rng = random.Random(seed + "/draw")
    for _ in range(ENUMERATE):
        yield tuple(rng.choice(v) for v in values)


def _coverage_first(configs: list, names: list, base: dict, budget: int | None) -> list:
    """`configs` reordered so every value of every searched hint shows up as early as it can
    (greedy: next is the first config adding the most unseen (hint, value) pairs), then the
    rest in their random order: a small budget still tries data tiling on and off, each
    tile size, each stage count, where plain random sampling favours the biggest sub-space."""
    seen = {(n, base.get(n)) for n in names}
    out, left = [], list(configs)
    limit = len(left) if budget is None else min(len(left), budget)
    while left and len(out) < limit:
        gains = [sum((n, c.get(n)) not in seen for n in names) for c in left]
        best = max(range(len(left)), key=lambda i: gains[i])
        if gains[best] == 0:
            break
        pick = left.pop(best)
        seen.update((n, pick.get(n)) for n in names)
        out.append(pick)
    return out + left


def _tunable(table, adapter) -> tuple:
    return tuple(h.name for h in table if h.tune or h.name in adapter.values)


def _unique(values) -> tuple:
    out = []
    for v in values:
        if v not in out:
            out.append(v)
    return tuple(out)


def parse_overrides(items) -> dict:
    """['tile_m=64,128', 'micro_n=16'] -> {'tile_m': (64, 128), 'micro_n': (16,)}; a hint given
    twice searches the values of both (['micro_m=2', 'micro_m=6'] -> {'micro_m': (2, 6)}); an
    empty value (`micro_m=4,,8`) is refused."""
    out = {}
    for item in items or ():
        name, sep, vals = item.partition("=")
        parts = [v.strip() for v in vals.split(",")]
        try:
            values = tuple(int(v) for v in parts) if all(parts) else ()
        except ValueError:
            values = ()
        if not sep or not name.strip() or not values:
            raise SpaceError(f"--space {item!r}: expected NAME=V1,V2,... with integer values (none empty)",
                             valid="e.g. --space tile_m=64,128")
        out[name.strip()] = _unique(out.get(name.strip(), ()) + values)
    return out
