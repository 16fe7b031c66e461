"""Nothing read from a tuning records file is trusted: a record of another key filed under this
key's id, a winner no `ok` measurement backs, a malformed or partial record, an unreadable
records file, degenerate options and a --space some target lacks are refused or ignored with
a note, never used and never a traceback (tune/records.py check, select.py, session.py,
command.py, space.py parse_overrides)."""
from __future__ import annotations

import json

import pytest
from test_tune_records import WINNER, artifact, backed, env, record, this_key

from fusebuild.backends import get_backend
from fusebuild.errors import FusebuildError
from fusebuild.tune import command
from fusebuild.tune.problem import Key
from fusebuild.tune.records import Records, check
from fusebuild.tune.select import schedule
from fusebuild.tune.session import Options, Session, _first_line
from fusebuild.tune.space import SpaceError, config_id, parse_overrides

BACKEND = get_backend("tir-cpu")
TWO_TARGETS = """\
name: g64
params: {M: 64, N: 64, K: 64}
inputs:
  x: {shape: [M, K], dtype: float32}
  w: {shape: [N, K], dtype: float32}
graph:
  - {op: matmul, inputs: [x, w], output: y, transpose_b: true}
outputs: [y]
targets: [tir-cpu, mlir-cpu]
"""


def write(path, recs):
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))


def test_a_record_of_another_key_filed_under_this_key_id_is_ignored_and_counted(tmp_path):
    a = artifact(tmp_path)
    key = this_key(a)
    path = tmp_path / "records.jsonl"
    forged = []
    for change in ({"device": "AMD EPYC 9999, 256 cores"},
                   {"toolchain": dict(key.as_json()["toolchain"], **{"apache-tvm": "0.1"})}):
        for r in backed(record(key, "winner", WINNER)):
            r = dict(r, key=dict(r["key"], **change))          # key_id still this machine's
            forged.append(r)
    write(path, forged)
    st = Records(path)
    assert st.records == [] and st.skipped == 4 and st.dropped[key.id] == 4
    assert "key_id is not the digest of its key" in st.skipped_text()
    s = schedule(a, BACKEND, env(path))
    assert s.source == "default" and not s.tuned_on
    assert "4 tuning record(s) filed under this key ignored (malformed, or their key is not" in s.note


def test_a_winner_is_used_only_when_an_ok_measurement_of_its_candidate_and_config_backs_it(tmp_path):
    a = artifact(tmp_path)
    key = this_key(a)
    path = tmp_path / "records.jsonl"
    win = record(key, "winner", WINNER)
    for before in ([], [record(key, "measurement", WINNER, status="compile-failed", error="x")],
                   [record(key, "measurement", WINNER, status="wrong-result", error="x")],
                   [record(key, "measurement", dict(WINNER, micro_n=32), candidate=win["candidate"])]):
        path.unlink(missing_ok=True)
        Records(path).append(before + [win])
        s = schedule(a, BACKEND, env(path))
        assert s.source == "default", before
        assert f"tuned winner not used: {win['candidate']} has no ok measurement" in s.note
        assert Records(path).winner(key.id) is None
    Records(path).append([record(key, "measurement", WINNER)])
    s = schedule(a, BACKEND, env(path))
    assert s.source == "tuned" and s.used == WINNER and "no ok measurement" not in s.note


def test_an_unbacked_newer_winner_leaves_the_older_backed_one_in_use_with_a_note(tmp_path):
    a = artifact(tmp_path)
    key = this_key(a)
    path = tmp_path / "records.jsonl"
    other = dict(WINNER, micro_n=32)
    Records(path).append(backed(record(key, "winner", WINNER)) +
                         [record(key, "winner", other, date="2026-12-02T00:00:00Z")])
    s = schedule(a, BACKEND, env(path))
    assert s.source == "tuned" and s.used == WINNER and "has no ok measurement" in s.note


@pytest.mark.parametrize("change", [
    {"date": 12345}, {"date": None}, {"candidate": None}, {"candidate": 7}, {"key": {}},
    {"key_device": None}, {"sizes": [1, 2]}, {"median_s": "fast"}, {"median_s": None}, {"config": {"micro_m": [4]}},
    {"status": "great"}, {"anchor": "yes"}, {"key_id": None}, {"torch_s": "x"}, {"delete": "candidate"},
    {"delete": "date"}, {"delete": "config"},
])
def test_a_malformed_record_is_skipped_and_counted_never_a_traceback(tmp_path, change):
    a = artifact(tmp_path)
    key = this_key(a)
    path = tmp_path / "records.jsonl"
    recs = []
    for r in backed(record(key, "winner", WINNER)):
        r = dict(r)
        if "delete" in change:
            r.pop(change["delete"])
        elif "key_device" in change:
            r["key"] = {k: v for k, v in r["key"].items() if k != "device"}
        else:
            r.update(change)
        recs.append(r)
    write(path, recs)
    st = Records(path)
    assert st.skipped >= 1 and all(not check(r) for r in st.records)
    s = schedule(a, BACKEND, env(path))                    # never a KeyError or TypeError
    assert s.source == "default"
    assert s.note or change == {"key_id": None}           # a record without an id is no key's
    from fusebuild.tune.session import _result
    _result(a, key, st.winner(key.id), 0, 0, False, st)   # the summary row reads them too


def test_a_partial_winner_config_is_not_used(tmp_path):
    a = artifact(tmp_path)
    key = this_key(a)
    path = tmp_path / "records.jsonl"
    for cfg in ({"micro_m": 4}, {}):
        path.unlink(missing_ok=True)
        Records(path).append(backed(record(key, "winner", cfg)))
        s = schedule(a, BACKEND, env(path))
        assert s.source == "default" and s.used == BACKEND.info.hints.resolve({})
        assert "tuned winner not used: its config lacks " in s.note


def test_a_records_path_that_is_a_directory_or_unwritable(tmp_path):
    a = artifact(tmp_path)
    folder = tmp_path / "dir"
    folder.mkdir()
    s = schedule(a, BACKEND, env(folder))                   # a build: no records, a note, no traceback
    assert s.source == "default" and "tuning records not read" in s.note
    assert Records(folder).error and Records(folder).writable()
    under_file = tmp_path / "afile"
    under_file.write_text("x")
    assert Records(under_file / "records.jsonl").writable() == f"{under_file} is not a directory"
    fresh = tmp_path / "new" / "records.jsonl"
    assert Records(fresh).writable() == "" and not fresh.exists()      # checking creates nothing that stays
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "g64.yaml").write_text(TWO_TARGETS)
    base = {"FUSEBUILD_SPECS": str(specs), "FUSEBUILD_OUT": str(tmp_path / "out")}
    for bad in (folder, under_file / "records.jsonl"):       # tune refuses before any work
        with pytest.raises(FusebuildError, match="tuning records"):
            Session(Options(), dict(base, FUSEBUILD_TUNING=str(bad)))


def test_space_is_checked_against_every_selected_target_before_any_work(tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "g64.yaml").write_text(TWO_TARGETS)
    e = {"FUSEBUILD_SPECS": str(specs), "FUSEBUILD_OUT": str(tmp_path / "out"),
         "FUSEBUILD_TUNING": str(tmp_path / "records.jsonl")}
    sess = Session(Options(tasks=["g64"], space={"micro_n": (32, 48)}), e, out=lambda s: None)
    sess.tune = sess.measure = lambda a, *rest: pytest.fail("tuned before the space was checked")
    with pytest.raises(SpaceError, match="mlir-cpu has no tunable hint 'micro_n'.*--target"):
        sess.run()
    assert not (tmp_path / "records.jsonl").exists()


@pytest.mark.parametrize("argv, message", [
    (["--rounds", "0"], "--rounds 0: at least 3"), (["--rounds", "2"], "--rounds 2"),
    (["--budget", "0"], "--budget 0"), (["--budget", "-3"], "--budget -3"),
    (["--time", "-5"], "--time -5"), (["--time", "0"], "--time 0"), (["--time", "nan"], "--time nan"),
    (["-j", "0"], "-j/--jobs 0"),
])
def test_degenerate_options_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        command.main(argv)
    assert info.value.code == 2 and message in capsys.readouterr().err
    assert command.check(command.parser().parse_args(["--rounds", "3", "--budget", "1", "-j", "1",
                                                      "--time", "0.5"])) == ""


def test_a_compile_failure_prints_its_reason_not_a_caret():
    err = ("g64/tir-cpu/tune/c5f1525399f3: fusebuild.errors.ToolchainError: kernel.mlir: iree-compile exited 1: "
           "/tmp/x/module_main_dispatch_0.mlir:8:6: error: One or more operations with large vector sizes "
           "(32768 bytes) were found:\n\n      func.func @main_dispatch_0() {\n     ^\n"
           "kernel.mlir:6:1: note:   %16 = vector.contract\n ^")
    assert _first_line(err) == "error: One or more operations with large vector sizes (32768 bytes) were found:"
    assert _first_line("build: Traceback (most recent call last):\n  File 'x'\nValueError: bad tile\n") == \
        "ValueError: bad tile"
    assert _first_line("   ^\n  ~~~^~~\n") == ""
    assert _first_line("build: no artifact was produced") == "build: no artifact was produced"


def test_space_overrides_merge_a_repeated_hint_and_refuse_an_empty_value():
    assert parse_overrides(["micro_m=2", "micro_m=6,2"]) == {"micro_m": (2, 6)}
    for bad in ("micro_m=4,,8", "micro_m=4,", "micro_m=", "micro_m=,4"):
        with pytest.raises(SpaceError, match="none empty"):
            parse_overrides([bad])


def test_a_key_of_the_same_id_is_the_same_key():
    """What makes an id match enough: a record is kept only if its key_id is its key's digest."""
    key = Key.of("p", "tir-cpu", "cpu", {"apache-tvm": "1"})
    rec = record(key, "measurement", WINNER)
    assert check(rec) == "" and rec["candidate"] == config_id(WINNER)
    assert check(dict(rec, key=dict(rec["key"], device="other"))) == "key_id is not the digest of its key"
    assert check(dict(rec, key=dict(rec["key"], toolchain={"apache-tvm": 1}))).startswith("key is not")
