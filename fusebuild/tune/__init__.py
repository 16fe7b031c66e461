"""Autotuning as a build stage: search a backend's declared hints, measure, keep the records.

Model. A tuning *problem* is a fused graph with its tensor names erased (problem.py): two
specs computing the same thing share their tuning. Its records are keyed by
(problem, target, device, toolchain versions): a winner found on one GPU, or with one TVM,
is never used for another. Per key the store (records.py, a JSON-lines file the team
commits: tuning/records.jsonl) holds every measured candidate (its hints, time, spread,
clocks or CPU load, date, method, or why it failed) and the winners.

  space.py      the candidates: the product of each hint's `tune` values, filtered by the
                backend's rules (hints.py `Rule`s: divisibility, registers, shared memory),
                the spec's hints first, then a seeded random order, cut by a budget
  cuda.py       tir-cuda's space adapter (candidate values and rules stated without TileLang)
  problem.py    the canonical problem and the records key (a dynamic problem: its range and
                the sizes its candidates are timed at)
  device.py     which device a record belongs to; clocks, power and load snapshots
  candidates.py candidate artifacts (out/.tune/...) and the doit build of them
  builders.py   the pluggable build step (doit -n here; the engine's executor when it has one)
  runners.py    load a built artifact once, call it many times (TVM, IREE, the CUDA loader)
  measure.py    interleaved timing: warm-up, random data rotated beyond the last-level cache,
                round-robin repetitions, median and IQR, clocks recorded (torch only); a
                dynamic problem at each of its sizes, judged by the geometric mean
  records.py    the store: append-only JSON lines, loaded into an index
  share.py      records through the artifact cache (a blob per problem key, local + remote)
  select.py     what a build uses: the winner for this device, else the spec's hints, else
                the defaults; the render key holds the result, so `why` names a changed winner
  session.py    `fusebuild tune`: plan, build, measure, record (and the GPU split:
                --build-only here, --measure on the GPU machine)
  command.py    its command line

Nothing here runs at import; the measuring path (`fusebuild tune --measure`) imports torch and
the target's runtime only (no doit, TVM's compiler or TileLang for tir-cuda).
"""
