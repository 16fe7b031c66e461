"""The command line of `fusebuild tune` (docs/tuning.md has the workflow)."""
from __future__ import annotations

import argparse

USAGE = """\
fusebuild tune [TASK ...] [options]

TASK: an artifact (spec/variant/target), a spec, a glob over artifact ids, or a doit task
(build:spec). None: every fused artifact of a tunable target (tir-cpu, mlir-cpu, tir-cuda).
Each artifact: candidates from its target's hints space (the spec's hints first), built in
parallel, checked and timed interleaved on this machine's device; the records go to
FUSEBUILD_TUNING (tuning/records.jsonl) and the artifact cache; `doit build` then uses the
winner. A GPU target on a machine without its GPU: `--build-only` here, `--measure` there.
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fusebuild tune", usage=USAGE, description=None)
    p.add_argument("tasks", nargs="*", help=argparse.SUPPRESS)
    p.add_argument("--target", action="append", default=[], help="only this target (repeatable)")
    p.add_argument("--budget", type=int, default=16, help="candidates per artifact, the spec's hints first "
                                                            "(default 16)")
    p.add_argument("--time", type=float, default=None, dest="time_s",
                   help="seconds of building per artifact: batches of JOBS candidates until it is spent")
    p.add_argument("-j", "--jobs", type=int, default=1, help="candidates built in parallel (doit -n)")
    p.add_argument("--space", action="append", default=[], metavar="HINT=V1,V2",
                   help="search only these hints, over these values (repeatable; a hint given twice searches "
                        "the values of both). It applies to every selected target: a target without one of "
                        "the hints stops the run before anything is built (choose targets with --target)")
    p.add_argument("--rounds", type=int, default=15, help=f"interleaved timing rounds (default 15, at least "
                                                           f"{MIN_ROUNDS})")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--build-only", action="store_true", help="build the candidates, do not measure")
    mode.add_argument("--measure", action="store_true", dest="measure_only",
                      help="measure what --build-only built (on the device; torch and the runtime only)")
    mode.add_argument("--dry-run", action="store_true", help="say what would be built and measured, and why")
    p.add_argument("--builder", choices=("doit", "inline"), default="doit", help="how candidates are built")
    p.add_argument("--retry-failed", action="store_true", help="build and measure failed candidates again")
    p.add_argument("--json", metavar="PATH", help="also write each artifact's result and cost (seconds) here")
    p.add_argument("--pack", metavar="FILE.tar.xz", help="with --build-only: pack what --measure needs (manifests, "
                                                         "built artifacts) to carry to the GPU machine")
    return p


MIN_ROUNDS = 3              # the median and quartiles of fewer rounds say nothing about the noise


def check(args) -> str:
    """Why the options cannot run ('' if they can): degenerate values are refused, not bent."""
    if args.rounds < MIN_ROUNDS:
        return f"--rounds {args.rounds}: at least {MIN_ROUNDS} interleaved rounds are needed for a median and its IQR"
    if args.budget < 1:
        return f"--budget {args.budget}: at least 1 candidate per artifact"
    if args.jobs < 1:
        return f"-j/--jobs {args.jobs}: at least 1 candidate built at a time"
    if args.time_s is not None and not (args.time_s > 0 and args.time_s != float("inf")):
        return f"--time {args.time_s:g}: a positive, finite number of seconds"
    return ""


def main(argv) -> int:
    from .session import Options
    from .session import main as run
    from .space import parse_overrides
    p = parser()
    args = p.parse_args(argv)
    bad = check(args)
    if bad:
        p.error(bad)
    opts = Options(tasks=args.tasks, targets=args.target, budget=args.budget, time_s=args.time_s, jobs=args.jobs,
                   space=parse_overrides(args.space), rounds=args.rounds, build_only=args.build_only,
                   measure_only=args.measure_only, builder=args.builder, retry_failed=args.retry_failed,
                   dry_run=args.dry_run, json=args.json, pack=args.pack)
    return run(opts)
