"""tune/records.py, problem.py, select.py, share.py and measure.py's arithmetic: the store,
the keys, which winner a build uses (never another device's or toolchain's, never a static
problem's for a dynamic artifact or the reverse), the sentence `why` prints, records
through the local cache."""
from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

from conftest import variants

from fusebuild import cache
from fusebuild.backends import get_backend
from fusebuild.plan.artifacts import Artifact
from fusebuild.tune import device as D
from fusebuild.tune.measure import combine, method, stats
from fusebuild.tune.problem import Key, canonical_graph, problem, problem_id, sizes
from fusebuild.tune.records import Records, blob, parse_lines
from fusebuild.tune.select import describe_change, key_for, render_code, schedule
from fusebuild.tune.share import pull, push
from fusebuild.tune.space import Space, config_id

SPEC = """\
name: {name}
params: {{M: 64, N: 96, K: 32}}
inputs:
  {x}: {{shape: [M, K], dtype: float32}}
  w: {{shape: [N, K], dtype: float32}}
  b: {{shape: [N], dtype: float32}}
graph:
  - {{op: matmul, inputs: [{x}, w], output: y, transpose_b: true, epilogue: [{{add: b}}, silu]}}
outputs: [y]
targets: [tir-cpu]
"""


def artifact(tmp_path, name="g", x="x", schedule_text="", m="64") -> Artifact:
    v = variants(SPEC.format(name=name, x=x).replace("M: 64", f"M: {m}") + schedule_text, "tir-cpu")[0]
    return Artifact(v, "tir-cpu", tmp_path / "out")


def record(key: Key, kind: str, config: dict, **extra) -> dict:
    return {"format": 1, "kind": kind, "key": key.as_json(), "key_id": key.id, "candidate": config_id(config),
            "config": config, "date": "2026-12-01T10:00:00Z", "run": "r1", "median_s": 1e-3, "status": "ok", **extra}


def backed(*winners) -> list:
    """Each winner record with the `ok` measurement of its candidate a winner needs to be used."""
    return [r for w in winners for r in (dict(w, kind="measurement", status="ok"), w)]


def this_key(a) -> Key:
    backend = get_backend("tir-cpu")
    return key_for(a.variant, "tir-cpu", Space.of(backend.info), backend.toolchain().versions, D.name("tir-cpu"))


# a complete config, as `fusebuild tune` records them (a partial one is never used)
WINNER = get_backend("tir-cpu").info.hints.resolve({"tile_m": 256, "tile_n": 96, "micro_m": 4, "micro_n": 16})


def env(path) -> dict:
    return {"FUSEBUILD_TUNING": str(path)}


def test_the_problem_has_no_names(tmp_path):
    a, b = artifact(tmp_path, "one", "x"), artifact(tmp_path, "two", "inp")
    assert canonical_graph(a.variant.graph) == canonical_graph(b.variant.graph)
    assert this_key(a) == this_key(b)
    assert problem_id(problem(a.variant.graph, {"threads": 1})) != problem_id(problem(a.variant.graph, {}))


def test_a_dynamic_problem_is_keyed_by_its_range_and_the_sizes_it_is_timed_at(tmp_path):
    static, dyn = artifact(tmp_path), artifact(tmp_path, m="{dynamic: [1, 64]}")
    assert dyn.variant.name == "M1to64_N96_K32"
    assert "sizes" not in problem(static.variant.graph, {})              # static digests unchanged
    assert problem(dyn.variant.graph, {}, sizes(dyn.variant))["sizes"] == [{"M": 1}, {"M": 7}, {"M": 64}]
    keys = {this_key(a) for a in (static, dyn, artifact(tmp_path, m="{dynamic: [1, 128]}"),
                                  artifact(tmp_path, m="{dynamic: [1, 64], validate: [32]}"))}
    assert len(keys) == 4                       # the range and the timed sizes are part of the problem
    assert sizes(static.variant) == ({},) and sizes(dyn.variant) == ({"M": 1}, {"M": 7}, {"M": 64})


def test_a_dynamic_winner_is_never_used_by_the_static_artifact_nor_the_reverse(tmp_path):
    static, dyn = artifact(tmp_path), artifact(tmp_path, m="{dynamic: [1, 64]}")
    backend = get_backend("tir-cpu")
    path = tmp_path / "records.jsonl"
    timed = [{"at": {"M": m}, "median_s": 1e-4} for m in (1, 7, 64)]
    Records(path).append(backed(record(this_key(dyn), "winner", WINNER, sizes=timed)))
    s = schedule(dyn, backend, env(path))
    assert s.source == "tuned" and s.used == WINNER
    assert s.report()["tuning"]["timed_at"] == [{"M": 1}, {"M": 7}, {"M": 64}]
    assert schedule(static, backend, env(path)).source == "default"
    other = dict(WINNER, micro_n=32)
    Records(path).append(backed(record(this_key(static), "winner", other)))
    assert schedule(static, backend, env(path)).used == other
    assert schedule(dyn, backend, env(path)).used == WINNER
    assert "timed_at" not in schedule(static, backend, env(path)).report()["tuning"]


def test_a_dynamic_candidate_time_is_the_geometric_mean_of_each_round():
    assert combine([[1.0, 4.0], [4.0, 1.0]]) == [2.0, 2.0]
    assert combine([[3.0, 5.0]]) == [3.0, 5.0]                          # one size: its own times
    facts = {"sets": 2, "set_bytes": 10, "cache_bytes": 15}
    assert method("perf_counter", 3, [facts])["rotated_bytes"] == 20             # a static run's record, as before
    dyn = method("perf_counter", 3, [dict(facts, at={"M": 1}), dict(facts, at={"M": 9})], ({"M": 1}, {"M": 9}))
    assert [s["at"] for s in dyn["sizes"]] == [{"M": 1}, {"M": 9}] and "geometric mean" in dyn["objective"]


def test_records_skip_bad_lines_and_drop_duplicates(tmp_path):
    key = Key.of("p", "tir-cpu", "cpu", {"apache-tvm": "1"})
    path = tmp_path / "records.jsonl"
    st = Records(path)
    rec = record(key, "measurement", WINNER)
    assert st.append([rec, rec]) == 1
    with open(path, "a") as f:
        f.write("<<<<<<< HEAD\n{not json\n")             # a merge conflict, a torn line
    st2 = Records(path)
    assert st2.skipped == 2 and st2.measured(key.id)[rec["candidate"]] == rec
    assert st2.append([rec]) == 0
    st2.append([record(key, "winner", WINNER)])
    lines = path.read_text().splitlines()
    assert json.loads(lines[-1])["kind"] == "winner"       # appended on a line of its own
    assert parse_lines(blob([rec, record(key, "winner", WINNER)]).decode())[1] == 0


def _append(path, i):
    key = Key.of("p", "t", "d", {})
    Records(path).append([record(key, "measurement", {"i": i, "pad": "x" * 5000})])


def test_concurrent_writers_keep_whole_lines(tmp_path):
    path = tmp_path / "records.jsonl"
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.starmap(_append, [(path, i) for i in range(40)])
    recs, skipped = parse_lines(path.read_text())
    assert skipped == 0 and sorted(r["config"]["i"] for r in recs) == list(range(40))


def test_build_uses_the_winner_for_this_device_and_toolchain_only(tmp_path):
    a = artifact(tmp_path)
    backend = get_backend("tir-cpu")
    path = tmp_path / "tuning" / "records.jsonl"
    assert schedule(a, backend, env(path)).source == "default"
    key = this_key(a)
    other_dev = Key.of(key.problem, key.target, "Some Other CPU, 64 cores", dict(key.toolchain))
    other_tc = Key.of(key.problem, key.target, key.device, dict(key.toolchain, **{"apache-tvm": "0.1"}))
    st = Records(path)
    st.append([record(other_dev, "winner", WINNER), record(other_tc, "winner", WINNER)])
    s = schedule(a, backend, env(path))
    assert s.source == "default" and s.used["micro_n"] == 48
    assert "tuned with other toolchain versions (apache-tvm 0.1 -> " in Records(path).explain_missing(key)
    st.append(backed(record(key, "winner", WINNER)))
    s = schedule(a, backend, env(path))
    assert s.source == "tuned" and s.used == WINNER
    assert s.tuned_on == f"{D.name('tir-cpu')}, 2026-12-01"
    assert s.report()["tuning"]["candidate"] == config_id(WINNER)
    assert schedule(a, backend, {"FUSEBUILD_TUNING": "off"}).source == "default"


def test_the_spec_hints_are_used_when_nothing_is_tuned_and_a_bad_winner_is_not(tmp_path):
    a = artifact(tmp_path, schedule_text="schedule: {tir-cpu: {micro_n: 32}}\n")
    backend = get_backend("tir-cpu")
    path = tmp_path / "records.jsonl"
    s = schedule(a, backend, env(path))
    assert (s.source, s.used["micro_n"], s.given) == ("hint", 32, {"micro_n": 32})
    Records(path).append(backed(record(this_key(a), "winner", dict(WINNER, micro_n=999))))
    s = schedule(a, backend, env(path))
    assert s.source == "hint" and "micro_n=999" in s.note


def test_a_winner_measured_with_other_render_code_builds_with_a_note_and_is_measured_again(tmp_path):
    a = artifact(tmp_path)
    backend = get_backend("tir-cpu")
    path = tmp_path / "records.jsonl"
    code = render_code(backend)
    Records(path).append([record(this_key(a), "measurement", WINNER), record(this_key(a), "winner", WINNER, code=code)])
    s = schedule(a, backend, env(path))
    assert s.source == "tuned" and s.note == ""
    Records(path).append(backed(record(this_key(a), "winner", WINNER, code="0123456789abcdef",
                                             date="2026-12-02T00:00:00Z")))
    s = schedule(a, backend, env(path))
    assert s.source == "tuned" and s.used == WINNER          # still a checked, valid config
    assert f"(render code 0123456789abcdef, now {code})" in s.note and "`fusebuild tune` measures it again" in s.note
    assert s.key_fields()["note"] == s.note             # validation.json is rewritten when the note goes
    old = record(this_key(a), "measurement", WINNER, code="0123456789abcdef")
    Records(path).append([old])
    st = Records(path)
    assert list(st.measured(this_key(a).id)) == [old["candidate"]]
    assert st.measured(this_key(a).id, code) == {}             # tune measures it again with this code
    # a later run with this code re-timed the winner as its reference and kept it: no longer stale
    Records(path).append([record(this_key(a), "measurement", WINNER, code=code, anchor=True,
                                 date="2026-12-03T00:00:00Z")])
    assert schedule(a, backend, env(path)).note == ""


def test_why_sentence_for_a_changed_winner():
    old = {"schedule.source": '"tuned"', "schedule.used.tile_m": "256", "schedule.tuned_on": '"A, 2026-01-01"'}
    new = {"schedule.source": '"tuned"', "schedule.used.tile_m": "128", "schedule.tuned_on": '"A, 2026-02-01"'}
    assert describe_change(old, new) == ("tuning: winner for this problem changed (tile_m 256 -> 128, "
                                         "tuned on A, 2026-02-01)")
    dflt = {"schedule.source": '"default"', "schedule.used.tile_m": "256"}
    assert describe_change(dflt, new) == ("tuning: now uses the winner tuned on A, 2026-02-01 "
                                          "(was default; tile_m 256 -> 128)")
    assert describe_change(new, dflt).startswith("tuning: the winner tuned on A, 2026-02-01 is no longer used")
    assert describe_change(new, new) == ""
    noted = dict(new, **{"schedule.note": '"tuned winner measured with other tir-cpu kernel code"'})
    assert describe_change(noted, new) == "tuning: same schedule, its note is gone"
    assert describe_change(new, noted).startswith("tuning: same schedule, note now: tuned winner measured")


def test_records_travel_through_the_local_cache(tmp_path):
    c = cache.Cache(cache.LocalStore(tmp_path / "cache"))
    key = Key.of("p", "tir-cpu", "cpu", {"apache-tvm": "1"})
    recs = [record(key, "measurement", WINNER), record(key, "winner", WINNER)]
    assert pull(key, c) == []
    assert push(key, recs, c)
    def lines(rs):
        return sorted(json.dumps(r, sort_keys=True) for r in rs)
    assert lines(pull(key, c)) == lines(recs)
    other = Key.of("p", "tir-cpu", "cpu", {"apache-tvm": "2"})
    assert pull(other, c) == []
    blob_file = next(Path(tmp_path / "cache" / "cas").rglob("*"), None)
    while blob_file is not None and blob_file.is_dir():
        blob_file = next(blob_file.iterdir())
    blob_file.write_bytes(b"tampered")                         # a corrupt blob is never used
    assert pull(key, c) == []


def test_stats_are_median_and_quartiles():
    s = stats([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s["median_s"], s["q1_s"], s["q3_s"], s["iqr_s"], s["min_s"], s["samples"]) == (3.0, 2.0, 4.0, 2.0, 1.0, 5)


def test_a_winner_must_beat_the_reference_beyond_the_noise():
    from fusebuild.tune.session import choose

    def rec(cid, q1, med, q3, status="ok"):
        return {"candidate": cid, "config": {}, "status": status, "q1_s": q1, "median_s": med, "q3_s": q3}
    base, close, clear = rec("base", 1.0, 1.1, 1.2), rec("close", 0.95, 1.05, 1.15), rec("clear", 0.7, 0.75, 0.8)
    assert choose([base, close], None, None, "base")[0]["candidate"] == "base"        # within the noise
    w, ref, changed = choose([base, close, clear], None, None, "base")
    assert (w["candidate"], ref["candidate"], changed) == ("clear", "base", True)
    win = {"candidate": "base"}
    assert choose([base, close], win, "base", None)[2] is False                       # incumbent stays
    assert choose([base, clear], win, "base", None)[0]["candidate"] == "clear"
    broken = rec("base", 0, 0, 0, status="wrong-result")
    assert choose([broken, close], win, "base", None)[0]["candidate"] == "close"      # a failed incumbent goes
    assert choose([close], win, "base", None)[2] is False                             # incumbent not in the run
    assert choose([rec("x", 1, 1, 1, "run-failed")], None, None, "x") == (None, None, False)


def test_the_winner_is_the_newest_by_date_whatever_the_line_order(tmp_path):
    key = Key.of("p", "tir-cpu", "cpu", {})
    st = Records(tmp_path / "records.jsonl")
    new = record(key, "winner", WINNER, date="2026-12-02T00:00:00Z")
    old = record(key, "winner", dict(WINNER, micro_n=32), date="2026-12-01T00:00:00Z")
    st.append(backed(new, old))                                   # an older record merged in later
    assert Records(tmp_path / "records.jsonl").winner(key.id) == new


def test_the_summary_times_a_kept_winner_with_its_newest_run(tmp_path):
    """A winner kept by later runs has no newer winner record: the summary's median and `vs torch`
    come from its newest timing, torch timed in that same run (an old winner record's torch time
    once printed 16x)."""
    from fusebuild.tune.session import _result
    a = artifact(tmp_path)
    key = this_key(a)
    st = Records(tmp_path / "records.jsonl")
    st.append([record(key, "measurement", WINNER, torch_s=16e-3),
               record(key, "winner", WINNER, torch_s=16e-3),
               record(key, "measurement", WINNER, anchor=True, date="2026-12-02T10:00:00Z", run="r2",
                      median_s=2e-3, torch_s=1.8e-3)])
    row = _result(a, key, st.winner(key.id), 0, 0, False, st)
    assert (row["time"], row["vs_torch"]) == ("2.000 ms", "0.90x")
