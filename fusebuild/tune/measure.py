"""Measurements a tuner can trust: checked first, then timed interleaved on random data.

For one problem, every candidate (and the incumbent winner, re-timed as the anchor, and
the graph in torch as the baseline) is measured in ONE run, because a machine's speed
drifts between runs (a loaded CPU, a GPU settling at its power cap): candidates are only
ever compared within a run.
  check      each candidate runs once on the validation inputs (same seed and tolerance as
             `doit build`); a wrong result is recorded `wrong-result` and never timed, a
             crash `run-failed`
  data       random inputs drawn like validation's (normal; B scaled by 1/sqrt(K)), in as
             many sets as it takes to pass the last-level cache (CPU: 1.25x the LLC from
             sysfs; GPU: 2x its L2), capped in bytes; each call takes the next set, so no
             call finds its operands in cache from the call before
  warm-up    every candidate runs until WARMUP_S has passed, which also sizes its batch
             (calls per sample) so one sample lasts at least MIN_SAMPLE_S
  rounds     ROUNDS times: every entry takes one sample, in a fresh random order per round
             (round robin: drift hits all candidates alike)
  timing     CPU: perf_counter around the batch; GPU: CUDA events around replays of a CUDA
             graph of one pass over the sets (device time: at ~10 us a kernel called from Python
             is timed as its launch overhead, and torch's op-by-op baseline as its launches),
             or around the calls themselves if some entry cannot be captured
  spread     median, quartiles, IQR and min of the per-call times of the samples
  winner     the fastest candidate replaces the reference (the incumbent re-timed, else the
             spec's hints or defaults) only if its interquartile range lies wholly below the
             reference's (clearly_faster): on a noisy machine the reference stays
  clocks     a device snapshot (device.snapshot: CPU MHz and load average; GPU SM clock,
             power draw) before the first round, after the middle one and after the last
  sizes      a dynamic problem (problem.sizes: several M) is timed at each of its sizes in
             the same run: every (candidate, size) is an entry of the round robin, with its
             own rotation sets; a candidate's time per round is the geometric mean of its
             times at the sizes in that round, and the median, quartiles and the winner rule
             work on those (per-size statistics are kept too)
Imports torch, and the candidates' runtimes through runners.py; nothing else.
"""
from __future__ import annotations

import dataclasses
import math
import random
import statistics
import time

from ..run import validate as V
from ..status import Status
from . import device as D

ROUNDS = 15
WARMUP_S = 0.3
MIN_SAMPLE_S = 0.02
MAX_SETS = 512
CAP_BYTES = {"cpu": 1 << 30, "cuda": 8 << 30}


OBJECTIVE = "geometric mean over the sizes of each round's per-call times"


def method(timing: str, rounds: int, facts: list, timed: tuple = ({},)) -> dict:
    """How a run timed (`timing`: cuda-graphs | cuda-events | perf_counter, as interleaved()
    reports it): `facts` is one rotation's facts (rotation()) per size of `timed`, a dynamic
    problem's with the size itself ({at: {M: 61}, sets, set_bytes, cache_bytes})."""
    out = {"timing": timing, "interleaved": "round-robin, "
           "random order per round", "rounds": rounds, "warmup_s": WARMUP_S, "min_sample_s": MIN_SAMPLE_S,
           "data": "random normal (validation's scales), rotated",
           "baseline": "the graph in torch, op by op in its own dtypes (tune.runners.native)"}
    rotated = [dict(f, rotated_bytes=f["sets"] * f["set_bytes"], beyond_cache=f["sets"] * f["set_bytes"] >
                    f["cache_bytes"]) for f in facts]
    if timed == ({},):
        out.update(rotated[0])
    else:
        out.update(objective=OBJECTIVE, sizes=rotated)
    return out


def set_bytes(graph) -> int:
    from ..ir.dtypes import DTYPES
    names = list(graph.inputs) + list(graph.outputs)
    return sum(math.prod(graph.tensors[n].shape) * DTYPES[graph.tensors[n].dtype].bytes for n in names)


def cache_bytes(kind: str) -> int:
    if kind == "cuda":
        import torch
        return int(getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 60 << 20))
    return D.llc_bytes()


def rotation(graph, kind: str, seed: int) -> tuple:
    """(sets of random inputs, method facts): enough sets to rotate beyond the cache."""
    per = max(1, set_bytes(graph))
    cache = cache_bytes(kind)
    want = (2.0 if kind == "cuda" else 1.25) * cache
    n = int(min(MAX_SETS, max(2, math.ceil(want / per)), max(2, CAP_BYTES[kind] // per)))
    return [V.make_inputs(graph, seed + i) for i in range(n)], {"sets": n, "set_bytes": per, "cache_bytes": cache}


def check(backend, a, folder, cuda: bool) -> tuple:
    """(status, reason): the candidate built in `folder` for artifact `a`, judged as `doit
    build` judges an artifact (run.samples: every input set, the per-element bound; the
    reference on the GPU when `cuda`)."""
    from ..plan.artifacts import FolderArtifact
    from ..run.samples import run_samples
    fused = dataclasses.replace(a.variant, mode="fused")
    try:
        sampled = run_samples(FolderArtifact(fused, a.target, a.out, folder), backend,
                              ref_device="cuda" if cuda else None)
    except Exception as err:  # noqa: BLE001 - a crashing candidate is recorded, never fatal
        return "run-failed", f"{type(err).__name__}: {err}"[-1500:]
    status, reason = V.verdict(sampled.sets, sampled.ok, sampled.execution)
    return ("ok", None) if status is Status.PASS else ("wrong-result", reason)


class Timer:
    """Seconds per call. On the GPU, device time: one pass over the rotation sets is captured as a
    CUDA graph and replayed between CUDA events, so a 10 us kernel is not timed as Python's
    launch overhead, nor torch's op-by-op baseline as its launches (`graphs` False after a failed
    capture: then events around calls from Python, for every entry alike)."""

    def __init__(self, cuda: bool):
        self.cuda, self.graphs, self._captured = cuda, cuda, {}
        if cuda:
            import torch
            self.torch = torch

    def capture(self, entries: dict) -> None:
        """One CUDA graph per entry (a pass over its sets), after its warm-up; if any entry cannot
        be captured, none is (a comparison must time every entry the same way)."""
        t = self.torch.cuda
        try:
            for calls in entries.values():
                g, stream = t.CUDAGraph(), t.Stream()
                stream.wait_stream(t.current_stream())
                with t.stream(stream):
                    for c in calls:                 # warm this stream (lazy workspaces, cuBLAS handles)
                        c()
                t.current_stream().wait_stream(stream)
                with t.graph(g):
                    for c in calls:
                        c()
                self._captured[id(calls)] = g
            t.synchronize()
        except Exception:  # noqa: BLE001 - a runtime that cannot be captured is timed from Python
            self._captured.clear()
            self.graphs = False
            t.synchronize()

    def sample(self, calls: list, start: int, batch: int) -> float:
        """Seconds per call of `batch` calls, starting at set `start` (with graphs: whole passes
        over the sets, at least `batch` calls)."""
        n = len(calls)
        if self.cuda:
            t = self.torch.cuda
            g = self._captured.get(id(calls))
            reps = -(-batch // n) if g is not None else 0
            t.synchronize()
            a, b = t.Event(enable_timing=True), t.Event(enable_timing=True)
            a.record()
            if g is not None:
                for _ in range(reps):
                    g.replay()
            else:
                for j in range(batch):
                    calls[(start + j) % n]()
            b.record()
            b.synchronize()
            return a.elapsed_time(b) / 1e3 / (reps * n if g is not None else batch)
        t0 = time.perf_counter()
        for j in range(batch):
            calls[(start + j) % n]()
        return (time.perf_counter() - t0) / batch


def interleaved(entries: dict, kind: str, rounds: int = ROUNDS, seed: int = 0) -> tuple:
    """entries: {name: [call per set]} -> ({name: [seconds per call, one per round]},
    [device snapshots], {name: calls per sample}, how it timed)."""
    timer = Timer(kind == "cuda")
    pos = {name: 0 for name in entries}
    batch = {}
    for name, calls in entries.items():                  # warm up, and size each batch
        start, done = time.perf_counter(), 0
        while True:
            per = timer.sample(calls, pos[name], 1)
            pos[name] += 1
            done += 1
            if time.perf_counter() - start >= WARMUP_S and done >= 3:
                break
        batch[name] = max(1, math.ceil(MIN_SAMPLE_S / max(per, 1e-9)))
    if timer.cuda:
        timer.capture(entries)
    snaps = [dict(D.snapshot(kind), at="start", t=round(time.time(), 1))]
    samples = {name: [] for name in entries}
    rng = random.Random(seed)
    for r in range(rounds):
        order = list(entries)
        rng.shuffle(order)
        for name in order:
            samples[name].append(timer.sample(entries[name], pos[name], batch[name]))
            pos[name] += batch[name]
        if r == rounds // 2:
            snaps.append(dict(D.snapshot(kind), at="middle", t=round(time.time(), 1)))
    snaps.append(dict(D.snapshot(kind), at="end", t=round(time.time(), 1)))
    timing = ("cuda-graphs" if timer.graphs else "cuda-events") if timer.cuda else "perf_counter"
    return samples, snaps, batch, timing


def run(target: str, graph, timed: tuple, folders: dict, rounds: int = ROUNDS, seed: int = 0) -> tuple:
    """Time the built candidates (`folders`: {candidate: folder}) and the graph in torch at
    each size of `timed` (problem.sizes: ({},) for a static graph) in ONE interleaved run.
    Returns ({candidate or "torch": stats}, {candidate: why it did not load}, snapshots,
    method): a static problem's stats as stats() plus `calls_per_sample`; a dynamic one's
    over the per-round geometric means (combine), plus `sizes`: each size's own stats,
    calls per sample and torch time ([{at: {M: 61}, median_s, ..., torch_s}, ...])."""
    from .runners import TorchRunner, runner
    kind = D.kind(target)
    calls, failed, facts = {}, {}, []
    for i, values in enumerate(timed):
        g = graph.specialize(values) if values else graph
        sets, fact = rotation(g, kind, seed=7919)
        facts.append(dict(at=dict(values), **fact) if values else fact)
        bound = runner(target, g, sets)
        for cid, folder in folders.items():
            if cid not in failed:
                try:
                    calls[(cid, i)] = bound.bind(folder)
                except Exception as err:  # noqa: BLE001 - a candidate that does not load is recorded
                    failed[cid] = f"{type(err).__name__}: {err}"
        calls[("torch", i)] = TorchRunner(g, sets, kind == "cuda").bind()
    calls = {k: v for k, v in calls.items() if k[0] not in failed}
    samples, snaps, batch, timing = interleaved(calls, kind, rounds, seed)
    got = {}
    for cid in ["torch", *(c for c in folders if c not in failed)]:
        per = [samples[(cid, i)] for i in range(len(timed))]
        got[cid] = stats(combine(per))
        if timed == ({},):
            got[cid]["calls_per_sample"] = batch[(cid, 0)]
        else:
            got[cid]["sizes"] = [dict(at=dict(values), **stats(x), calls_per_sample=batch[(cid, i)],
                                      **({"torch_s": got["torch"]["sizes"][i]["median_s"]} if cid != "torch" else {}))
                                 for i, (values, x) in enumerate(zip(timed, per))]
    return got, failed, snaps, method(timing, rounds, facts, timed)


def combine(per_size: list) -> list:
    """One entry's time per round over several sizes (one list per size, one time per round):
    the geometric mean of the round's times, so every size weighs alike whatever its scale."""
    if len(per_size) == 1:
        return list(per_size[0])
    return [math.exp(statistics.fmean(math.log(t) for t in ts)) for ts in zip(*per_size)]


def clearly_faster(a: dict, b: dict) -> bool:
    """a beats b beyond the noise of this run: a's whole interquartile range lies below b's
    (a's upper quartile under b's lower one). Otherwise a win would be a coin toss."""
    return a["candidate"] != b["candidate"] and a["q3_s"] < b["q1_s"]


def stats(samples: list) -> dict:
    s = sorted(samples)
    if len(s) >= 2:
        q1, med, q3 = statistics.quantiles(s, n=4, method="inclusive")
    else:
        q1 = med = q3 = s[0]
    return {"median_s": med, "q1_s": q1, "q3_s": q3, "iqr_s": q3 - q1, "min_s": s[0], "samples": len(s)}
