"""`fusebuild tune`: per artifact, plan the candidates, build them, measure them, record.

Per fused artifact (spec, variant, target) selected, whose target has a tuning space:
  plan      the records key (problem, target, device, toolchain versions); the key's
            records from the file and the artifact cache (share.pull, merged into the
            file); the space's candidates under the budget (space.py); minus those
            already recorded (a failure too, unless --retry-failed). Nothing new: done,
            nothing is built or measured.
  build     the new candidates, plus the incumbent winner (re-timed as the anchor), by the
            builder (builders.py; doit -n JOBS); a time budget builds them in batches and
            stops starting batches once it is spent. tune.json records what built.
  measure   check every built candidate's numerics, time them interleaved with the anchor
            and torch (measure.py), append one record per candidate and, if the best of
            this run beats the incumbent in this run, a winner record; push the key's
            records to the cache (share.push).
One line per candidate is printed as it is measured, then a table per artifact.

The GPU split: `--build-only` stops after build (here, without a GPU); `--measure` (on the
GPU machine: torch, the CUDA loader, nothing of doit, TVM or TileLang) measures what the
manifests list and writes the records; the next build here reads the winners from the
committed records file (or the cache).
"""
from __future__ import annotations

import fnmatch
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FusebuildError
from ..hashing import digest, file_sha256
from ..tables import table
from . import device as D
from . import manifest as M
from .problem import Key, sizes, summary
from .records import OK, Records, now
from .space import config_id, show

FAILED = ("compile-failed", "wrong-result", "run-failed")


@dataclass
class Options:
    tasks: list = field(default_factory=list)
    targets: list = field(default_factory=list)
    budget: int = 16
    time_s: float | None = None
    jobs: int = 1
    space: dict = field(default_factory=dict)
    rounds: int = 15
    build_only: bool = False
    measure_only: bool = False
    builder: str = "doit"
    retry_failed: bool = False
    dry_run: bool = False
    json: str | None = None           # also write the per-artifact results (and costs) here
    pack: str | None = None           # --build-only: also write what --measure needs into this .tar.xz


class Session:
    def __init__(self, opts: Options, env=None, out=None):
        from ..plan.project import Project
        from .select import records_path
        self.opts, self.env = opts, env
        self.print = out or (lambda s: print(s, flush=True))
        self.project = Project.from_settings(env)
        path = records_path(env)
        if path is None:
            raise FusebuildError("FUSEBUILD_TUNING=off: there is no records file to tune into",
                                 valid="a path (default tuning/records.jsonl)")
        self.store = Records(path)
        if self.store.error:
            raise FusebuildError(f"fusebuild tune: cannot read the tuning records: {self.store.error}",
                                 valid="FUSEBUILD_TUNING: a file path (default tuning/records.jsonl)")
        if not opts.dry_run:
            why = self.store.writable()
            if why:
                raise FusebuildError(f"fusebuild tune: cannot write the tuning records: {why}",
                                     valid="FUSEBUILD_TUNING: a writable file path (default tuning/records.jsonl)")
        self.results = []
        self.cost = {}                  # artifact id -> {candidates, build_s, measure_s}
        self.built = []                 # (artifact, manifest) written by this run

    # --- which artifacts ------------------------------------------------------------------
    def artifacts(self) -> list:
        for path, err in self.project.errors:
            self.print(f"skipping {path}: {err}")
        out = []
        for a in self.project.artifacts:
            if a.variant.mode != "fused" or D.kind(a.target) not in ("cpu", "cuda"):
                continue
            if self.opts.targets and a.target not in self.opts.targets:
                continue
            if self.opts.tasks and not any(_matches(a.id, t) for t in self.opts.tasks):
                continue
            out.append(a)
        return out

    def run(self) -> int:
        arts = self.artifacts()
        if not arts:
            self.print("fusebuild tune: no fused artifact matches (tunable targets: tir-cpu, mlir-cpu, tir-cuda)")
            return 1
        self.check_space(arts)
        if self.store.skipped:
            self.print(f"note: {self.store.skipped_text()}; they are ignored")
        for a in arts:
            if self.opts.measure_only:
                self.measure(a)
            else:
                self.tune(a)
        if self.opts.pack:
            self.write_pack(Path(self.opts.pack))
        self.summary()
        return 1 if any(r.get("error") for r in self.results) else 0

    def check_space(self, arts: list):
        """--space applies to every selected target: checked against each before any work, so a
        target without one of its hints stops the run before anything is built."""
        if not self.opts.space or self.opts.measure_only:
            return
        from .space import Space, SpaceError
        for target in sorted({a.target for a in arts}):
            try:
                Space.of(self.project.backend(target).info, self.opts.space)
            except SpaceError as err:
                raise SpaceError(f"{err.message}; --space applies to every selected target: "
                                 f"choose targets with --target", valid=err.valid) from None

    # --- plan + build ---------------------------------------------------------------------
    def tune(self, a):
        from .select import key_for, render_code
        from .share import pull
        from .space import Problem, Space
        p = self.project
        backend = p.backend(a.target)
        space = Space.of(backend.info, self.opts.space)
        head = f"{a.id}: {summary(a.variant.graph)}"
        if not space.searched:
            self.print(f"{head}: {a.target} declares no tunable hints")
            return
        tc = p.toolchain(a.target)
        if not tc.available:
            self.print(f"{head}: not tuned: {tc.reason}")
            self.results.append({"artifact": a.id, "error": f"toolchain: {tc.reason}"})
            return
        dev = backend.device()
        if not (dev.available or self.opts.build_only or self.opts.dry_run):
            self.print(f"{head}: not tuned here ({dev.reason}): `fusebuild tune --build-only` builds its candidates, "
                       f"`fusebuild tune --measure` measures them where the device is")
            return
        key = key_for(a.variant, a.target, space, dict(tc.versions), D.name(a.target, self.env))
        cached = pull(key)                     # merged into the file, to commit (in memory on a dry run)
        merged = self.store.add_extra(cached) if self.opts.dry_run else self.store.append(cached)
        problem = Problem.of(a.variant.graph, D.cores(), D.vector_bits())
        cands, rejected = space.candidates(dict(a.hints), problem, key.problem + a.target, self.opts.budget,
                                           a.variant.graph)
        if len(cands) == 1 and not self.store.winner(key.id):
            self.print(f"{head}\n  nothing to search: one configuration after the rules "
                       f"({_space_text(space, rejected, problem)}); builds use "
                       f"{'the hints' if a.hints else 'the defaults'}")
            return
        code = render_code(backend)
        measured = self.store.measured(key.id, code)
        known = {cid for cid, r in measured.items() if r["status"] == OK or not self.opts.retry_failed}
        new = [c for c in cands if config_id(c) not in known]
        win = self.store.winner(key.id)
        why = ("" if measured else " (measured with other render code: measuring again)" if self.store.measured(key.id)
               else f" ({self.store.explain_missing(key)})")
        self.print(f"{head}\n  key {key.id} on {key.device}{why}; space: {_space_text(space, rejected, problem)}; "
                   f"budget {self.opts.budget}: {len(cands)} candidate(s), {len(cands) - len(new)} recorded"
                   f"{f' ({merged} record(s) from the cache)' if merged else ''}, {len(new)} new")
        self.cost[a.id] = {"candidates": len(cands), "new": len(new), "from_cache": merged}
        if not new:
            self.print(f"  nothing new to measure; winner: {_winner_text(win)}")
            self.results.append(_result(a, key, win, 0, 0, changed=False, store=self.store))
            return
        if self.opts.dry_run:
            for c in new:
                self.print(f"  would build and measure {config_id(c)}  {show(c, _varied(cands))}")
            return
        anchor = win if win and win["candidate"] not in {config_id(c) for c in new} else None
        t0 = time.perf_counter()
        built = self.build(a, ([win["config"]] if anchor else []) + new, _varied(cands))    # the anchor first
        self.cost[a.id]["build_s"] = round(time.perf_counter() - t0, 2)
        man = {"format": 1, "artifact": a.id, "spec": a.variant.spec, "variant": a.variant.name, "target": a.target,
               "key": key.as_json(), "key_id": key.id, "problem": summary(a.variant.graph), "date": now(), "code": code,
               "searched": _varied(cands), "candidates": built, "base": config_id(cands[0]),
               "anchor": anchor["candidate"] if anchor else None,
               "space": {"rejected": rejected, "budget": self.opts.budget}}
        M.write(a, man)
        self.built.append((a, man))
        if self.opts.build_only:
            n_ok = sum(1 for c in built if c["status"] == "built")
            self.print(f"  built {n_ok}/{len(built)} candidate(s); measure them where the device is: "
                       f"fusebuild tune --measure {a.id}")
            return
        self.measure(a, man)

    def build(self, a, configs: list, shown: list) -> list:
        """Build the candidates (in batches under a time budget); their manifest entries."""
        from .builders import BUILDERS
        builder = BUILDERS[self.opts.builder](self.opts.jobs, self.env)
        cands = [M.candidate(a, config_id(c), c) for c in configs]
        start, done = time.perf_counter(), []
        size = len(cands) if self.opts.time_s is None else max(1, self.opts.jobs)
        for i in range(0, len(cands), size):
            if self.opts.time_s is not None and done and time.perf_counter() - start > self.opts.time_s:
                self.print(f"  time budget {self.opts.time_s:.0f} s spent: {len(cands) - i} candidate(s) not built")
                break
            batch = cands[i:i + size]
            secs = builder.build(self.project, batch, self.print)
            done += batch
            self.print(f"  built {len(batch)} candidate(s) with {builder.name} -j {self.opts.jobs} in {secs:.1f} s")
        backend = self.project.backend(a.target)
        entries, by_hash = [], {}
        for c in done:
            fail = M.failure(c)
            files = [c.dir / f for f in backend.artifact_files]
            entry = {"id": c.cid, "config": c.config, "folder": str(c.dir.relative_to(a.out))}
            if fail or not all(f.exists() for f in files):
                fail = fail or {"stage": "build", "error": "no artifact was produced"}
                entry.update(status="compile-failed", error=f"{fail['stage']}: {fail['error']}"[-1500:])
                self.print(f"  FAILED  {c.cid}  {show(c.config, shown)}  {_first_line(entry['error'])}")
            else:
                h = digest([file_sha256(f) for f in files])
                entry.update(status="built", artifact_sha256=h)
                if h in by_hash:
                    entry["same_as"] = by_hash[h]
                by_hash.setdefault(h, c.cid)
            entries.append(entry)
        return entries

    # --- measure ----------------------------------------------------------------------------
    def measure(self, a, man: dict | None = None):
        from .share import push
        man = man or M.read(a)
        if not man:
            if self.opts.tasks:
                self.print(f"{a.id}: no candidates built (run `fusebuild tune --build-only` first)")
            return
        kind = D.kind(a.target)
        backend = self.project.backend(a.target)
        dev = backend.device()
        if not dev.available:
            self.print(f"{a.id}: cannot measure here: {dev.reason}")
            self.results.append({"artifact": a.id, "error": f"device: {dev.reason}"})
            return
        device = _actual_device(kind)
        key = Key.from_json(dict(man["key"], device=device))
        if device != man["key"]["device"]:
            self.print(f"  note: built for {man['key']['device']}, measured on {device}: recorded for {device}")
        measured = self.store.measured(key.id, man.get("code"))
        todo = {c["id"] for c in man["candidates"] if c["id"] not in measured
                or (self.opts.retry_failed and measured[c["id"]]["status"] != OK)}
        win = self.store.winner(key.id)
        anchor = win["candidate"] if win and win["candidate"] not in todo else None
        wanted = [c for c in man["candidates"] if c["id"] in todo or c["id"] == anchor]
        if not todo:
            self.print(f"{a.id}: every candidate of its tune.json is recorded for {device}")
            return
        if anchor and anchor not in {c["id"] for c in wanted}:
            self.print(f"  note: the winner {anchor} was not built with these candidates: they are recorded, "
                       f"but no new winner is declared (compare within one run: run `fusebuild tune` again)")
        run_id = f"{now()}-{uuid.uuid4().hex[:6]}"
        self.print(f"  measuring {len(todo)} candidate(s){' and the winner ' + anchor if anchor else ''} "
                   f"on {device}, run {run_id}")
        t0 = time.perf_counter()
        recs = self._measure_run(a, man, wanted, anchor, todo, key, run_id, backend)
        self.cost.setdefault(a.id, {})["measure_s"] = round(time.perf_counter() - t0, 2)
        winner, ref, changed = choose(recs, win, anchor, man.get("base"))
        if changed:
            prev = None
            inc = next((r for r in recs if r["candidate"] == anchor), None)
            if inc is not None:
                prev = {"candidate": anchor, "config": inc["config"], "status": inc["status"],
                        **({"median_s": inc["median_s"]} if inc["status"] == OK else {})}
            recs.append({**_head(key, man, run_id), "kind": "winner", "candidate": winner["candidate"],
                         "config": winner["config"], "median_s": winner["median_s"], "iqr_s": winner["iqr_s"],
                         "torch_s": winner.get("torch_s"), "previous": prev, "rule": RULE,
                         **({"sizes": winner["sizes"]} if "sizes" in winner else {}),
                         "reference": ({k: ref[k] for k in ("candidate", "median_s", "q1_s", "q3_s")}
                                       if ref else None)})
        self.store.append(recs)
        push(key, self.store.of(key.id))
        n_new = sum(1 for r in recs if r["kind"] == "measurement" and not r.get("anchor"))
        self.results.append(_result(a, key, self.store.winner(key.id), n_new,
                                    sum(1 for r in recs if r.get("status") in FAILED), changed, self.store))

    def _measure_run(self, a, man, wanted, anchor, todo, key, run_id, backend) -> list:
        """Check, then time `wanted` interleaved with torch (at each of a dynamic problem's
        sizes: problem.sizes): one measurement record each."""
        from . import measure
        v, kind = a.variant, D.kind(a.target)
        status, folders = {}, {}
        built = set()
        for c in wanted:
            cid = c["id"]
            if c["status"] != "built":
                status[cid] = ("compile-failed", c.get("error"))
                continue
            if c.get("same_as") in built:
                continue                                   # byte-identical to one timed here
            built.add(cid)
            folder = a.out / c["folder"]
            status[cid] = measure.check(backend, a, folder, kind == "cuda")
            if status[cid][0] == OK:
                folders[cid] = folder
        got, failed, snaps, how = measure.run(a.target, v.graph, sizes(v), folders, self.opts.rounds,
                                              seed=int(digest(run_id)[:8], 16))
        status.update({cid: ("run-failed", why) for cid, why in failed.items()})
        torch_s = got["torch"]["median_s"]
        recs = []
        for i, c in enumerate(wanted):
            cid = c["id"]
            src = cid if cid in status else c.get("same_as")
            st, why = status[src]
            rec = {**_head(key, man, run_id), "kind": "measurement", "candidate": cid, "config": c["config"],
                   "status": st, "anchor": cid == anchor, "method": how, "env": snaps}
            if src != cid:
                rec["same_as"] = src
            if st == OK:
                rec.update(got[src], torch_s=torch_s)
                text = (f"{got[src]['median_s'] * 1e3:9.3f} ms  IQR {got[src]['iqr_s'] * 1e3:.3f} ms  "
                        f"{torch_s / got[src]['median_s']:.2f}x torch{_sizes_text(got[src])}")
            else:
                rec["error"] = str(why or "")[-1500:]
                text = f"{st}: {_first_line(rec['error'])}"
            recs.append(rec)
            tag = "  (winner, re-timed)" if cid == anchor else ""
            self.print(f"  [{i + 1}/{len(wanted)}] {cid}  {show(c['config'], man['searched'])}  {text}{tag}")
        return recs

    def write_pack(self, path: Path):
        """What `--measure` needs from this run's builds (manifests, the built candidates'
        artifact files), under the output folder's name (`out/.tune/...`): unpack it at the project's
        root. Paths are relative to the output folder, never to the working directory (an output
        folder outside it gave `../..` members, which tar strips on the way in)."""
        import tarfile
        n = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(path, "w:xz") as tar:
            for a, man in self.built:
                def arc(p, out=Path(a.out)):
                    return str(Path(out.name) / Path(p).relative_to(out))
                tar.add(M.path(a), arcname=arc(M.path(a)))
                files = self.project.backend(a.target).artifact_files
                for c in man["candidates"]:
                    if c["status"] == "built" and not c.get("same_as"):
                        for f in files:
                            tar.add(a.out / c["folder"] / f, arcname=arc(a.out / c["folder"] / f))
                        n += 1
        outs = sorted({Path(a.out).name for a, _ in self.built})
        env = "" if outs in ([], ["out"]) else f"FUSEBUILD_OUT={outs[0]} "
        self.print(f"packed {n} candidate(s) of {len(self.built)} artifact(s) into {path} "
                   f"({path.stat().st_size / 1e6:.1f} MB): `tar xf {path.name}` at the project root, then "
                   f"`{env}fusebuild tune --measure`")

    def summary(self):
        for r in self.results:
            r.update(self.cost.get(r["artifact"], {}))
        if self.opts.json:
            from ..fsutil import write_json
            write_json(self.opts.json, {"results": self.results, "records": str(self.store.path)})
        if not self.results:
            return
        rows = [[r["artifact"], str(r.get("measured", "-")), str(r.get("failed", "-")),
                 r.get("winner", r.get("error", "-")), r.get("time", "-"), r.get("vs_torch", "-"),
                 "yes" if r.get("changed") else "no", _secs(r.get("build_s")), _secs(r.get("measure_s"))]
                for r in self.results]
        self.print(table(["artifact", "measured", "failed", "winner", "median", "vs torch", "new winner", "build",
                          "measure"], rows, rule=False))
        self.print(f"records: {self.store.path}")


def _secs(x) -> str:
    return "-" if x is None else f"{x:.1f} s"


RULE = ("the fastest median of the run, if its whole interquartile range is below the reference's "
        "(the re-timed winner, else the spec's hints or defaults); otherwise the reference")


def choose(recs: list, win, anchor, base) -> tuple:
    """(winner record, reference record, whether to record a winner) of one run.

    The reference is the incumbent winner re-timed in this run, or, for a key's first
    winner, the base configuration (the spec's hints, else the defaults). The fastest
    candidate replaces it only if it is faster beyond the noise (measure.clearly_faster):
    on a noisy machine the reference stays. A reference that failed its check is replaced
    by the fastest candidate that passed."""
    from .measure import clearly_faster
    ok = [r for r in recs if r["status"] == OK]
    if not ok:
        return None, None, False
    best = min(ok, key=lambda r: r["median_s"])
    if win is not None:
        inc = next((r for r in recs if r["candidate"] == anchor), None)
        if inc is None:                        # the incumbent was not in this run: no comparison
            return None, None, False
        if inc["status"] != OK:
            return best, None, True
        return (best, inc, True) if clearly_faster(best, inc) else (inc, inc, False)
    ref = next((r for r in ok if r["candidate"] == base), None)
    if ref is None:
        return best, None, True
    return (best if clearly_faster(best, ref) else ref), ref, True


def _head(key, man, run_id) -> dict:
    return {"format": 1, "key": key.as_json(), "key_id": key.id, "problem": man["problem"], "run": run_id,
            "date": now(), **({"code": man["code"]} if man.get("code") else {})}


def _actual_device(kind: str) -> str:
    if kind == "cuda":
        import torch
        return torch.cuda.get_device_name()
    return D.cpu_name()


def _matches(artifact_id: str, pattern: str) -> bool:
    pattern = pattern.split(":", 1)[1] if pattern.startswith(("build:", "validate:")) else pattern
    pattern = pattern.strip("/")
    return (artifact_id == pattern or artifact_id.startswith(pattern + "/") or fnmatch.fnmatch(artifact_id, pattern))


def _varied(configs: list) -> list:
    """The hints whose value differs between `configs` (what a candidate's line shows)."""
    names = sorted({k for c in configs for k in c})
    return [n for n in names if len({repr(c.get(n)) for c in configs}) > 1]


def _space_text(space, rejected: dict, problem) -> str:
    left = sum(rejected.values())
    rules = ", ".join(f"{k} {v}" for k, v in sorted(rejected.items(), key=lambda kv: -kv[1]))
    return f"{', '.join(space.searched_for(problem))}" + (f" ({left} left out by rules: {rules})" if left else "")


def _sizes_text(stats: dict) -> str:
    """`  geomean of M=1 0.012, M=61 0.210, M=4096 9.871 ms` for a dynamic problem's stats."""
    if "sizes" not in stats:
        return ""
    return "  geomean of " + ", ".join(f"{show(s['at'])} {s['median_s'] * 1e3:.3f}" for s in stats["sizes"]) + " ms"


def _winner_text(win) -> str:
    if not win:
        return "none (every candidate failed)"
    return f"{win['candidate']} {show(win['config'])}, {win['median_s'] * 1e3:.3f} ms, tuned on " \
           f"{win['key']['device']}, {win['date'][:10]}"


def _first_line(text) -> str:
    """The line of an error worth printing: from the first compiler `error:` on, else the last
    Python `...Error: ...` line, else the first line with words in it (never a caret or `~~~`
    marker line that compilers put under a quoted source line)."""
    import re
    lines = [ln.strip() for ln in str(text or "").splitlines()]
    lines = [ln for ln in lines if re.search(r"[A-Za-z0-9]", ln)]
    for ln in lines:
        m = re.search(r"\berror:\s*(\S.*)", ln, re.I)
        if m:
            return f"error: {m.group(1)}"[:160]
    raised = [ln for ln in lines if re.match(r"([\w.]+(Error|Exception|Fault)|stage \w+)\b", ln)]
    return (raised[-1] if raised else lines[0] if lines else "")[:160]


def _result(a, key, win, measured, failed, changed, store) -> dict:
    """The summary row: the winner's newest timing and torch's in that same run (a winner kept
    by later runs has newer timings than its winner record)."""
    r = {"artifact": a.id, "key_id": key.id, "measured": measured, "failed": failed, "changed": changed}
    if win:
        timed = store.latest_timing(key.id, win["candidate"]) or win
        r.update(winner=win["candidate"], time=f"{timed['median_s'] * 1e3:.3f} ms")
        if timed.get("torch_s"):
            r["vs_torch"] = f"{timed['torch_s'] / timed['median_s']:.2f}x"
    return r


def main(opts: Options, env=None) -> int:
    try:
        return Session(opts, env).run()
    except KeyboardInterrupt:
        print("fusebuild tune: interrupted (what was recorded stays recorded)", file=sys.stderr)
        return 130

