"""`fusebuild tune` end to end on tir-cpu (real doit builds of the candidates, real timing
on this CPU, tiny spaces): records written, nothing measured twice, one added candidate
measured alone, the build using (and naming) the winner, failing candidates never winning,
the --build-only / --measure split, `why` after a new winner, records through the nginx
remote cache, and the measuring path importing no doit, TVM compiler or TileLang."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from conftest import REPO, Project

from fusebuild.cache.server import NginxCache, nginx_binary
from fusebuild.tune.records import Records

SPEC = """\
name: g
params: {M: 64, N: 96, K: 32}
inputs:
  x: {shape: [M, K], dtype: float32}
  w: {shape: [N, K], dtype: float32}
  b: {shape: [N], dtype: float32}
graph:
  - {op: matmul, inputs: [x, w], output: y, transpose_b: true, epilogue: [{add: b}, silu]}
outputs: [y]
targets: [tir-cpu]
schedule: {tir-cpu: {micro_m: 4}}   # 4-row register tiles: micro_n 16-64 all fit the 32 registers
seed: 3
"""
ART = "g/M64_N96_K32/tir-cpu"
FAST = ["--rounds", "3"]
PLANTED = REPO / "tests" / "data" / "planted_drop_bias"

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def tune(p: Project, *args, check=0, env=None) -> str:
    proc = subprocess.run([sys.executable, "-m", "fusebuild", "tune", *args], cwd=p.root, capture_output=True,
                          text=True, env=dict(p.env, **(env or {})), timeout=900, check=False)
    out = proc.stdout + proc.stderr
    if check is not None:
        assert proc.returncode == check, out
    return out


def records(p: Project) -> list:
    return Records(p.root / "tuning" / "records.jsonl").records


def measured(recs, anchor=None) -> list:
    return [r for r in recs if r["kind"] == "measurement" and (anchor is None or r["anchor"] == anchor)]


def report(p: Project) -> dict:
    return json.loads((p.root / "out" / ART / "validation.json").read_text())


@pytest.fixture
def proj(tmp_path) -> Project:
    p = Project(tmp_path / "p")
    p.spec("g", SPEC)
    return p


def test_tune_records_then_measures_only_what_is_new_and_the_build_uses_the_winner(proj):
    out = tune(proj, ART, "--space", "micro_n=16,32", *FAST)
    assert "never tuned" in out and "3 candidate(s), 0 recorded, 3 new" in out, out
    assert out.count("x torch") == 3                                  # one line per candidate
    recs = records(proj)
    ms, wins = measured(recs), [r for r in recs if r["kind"] == "winner"]
    assert sorted(r["config"]["micro_n"] for r in ms) == [16, 32, 48] and len(wins) == 1
    for r in ms:
        assert r["status"] == "ok" and r["median_s"] > 0 and r["q1_s"] <= r["median_s"] <= r["q3_s"]
        assert r["samples"] == 3 and r["torch_s"] > 0 and r["method"]["interleaved"].startswith("round-robin")
        assert {"cpu_mhz", "loadavg"} <= set(r["env"][0]) and r["key"]["device"].endswith("cores")
    base = next(r for r in ms if r["config"]["micro_n"] == 48)             # the defaults: the reference
    assert wins[0]["reference"]["candidate"] == base["candidate"]
    if wins[0]["candidate"] != base["candidate"]:                           # only a clear win replaces it
        assert wins[0]["median_s"] == min(r["median_s"] for r in ms)
        assert next(r for r in ms if r["candidate"] == wins[0]["candidate"])["q3_s"] < base["q1_s"]

    # a second run: nothing new, nothing built or measured
    out = tune(proj, ART, "--space", "micro_n=16,32", *FAST)
    assert "nothing new to measure" in out and "built" not in out, out
    assert records(proj) == recs

    # one more candidate: only it is measured (the winner is re-timed in the same run, as the anchor)
    out = tune(proj, ART, "--space", "micro_n=16,32,64", *FAST)
    assert "4 candidate(s), 3 recorded, 1 new" in out, out
    new = records(proj)[len(recs):]
    assert [r["config"]["micro_n"] for r in measured(new, anchor=False)] == [64]
    assert [r["candidate"] for r in measured(new, anchor=True)] == [wins[0]["candidate"]]
    win = Records(proj.root / "tuning" / "records.jsonl").winner(wins[0]["key_id"])

    # the build uses the winner and says so
    proj.doit("build", check=0)
    sched = report(proj)["schedule"]
    assert report(proj)["status"] == "pass"
    assert sched["source"] == "tuned" and sched["resolved"] == win["config"]
    assert sched["tuned_on"] == f"{win['key']['device']}, {win['date'][:10]}"
    assert sched["built"]["gemms"]["y_matmul"]["micro_n"] == win["config"]["micro_n"]
    assert "tuned on" in (proj.root / "out" / "report.md").read_text()


def test_why_explains_a_new_winner(proj):
    tune(proj, ART, "--space", "micro_n=16,32", *FAST)
    proj.doit("build", check=0)
    st = Records(proj.root / "tuning" / "records.jsonl")
    old = next(r for r in reversed(st.records) if r["kind"] == "winner")
    loser = next(r for r in measured(st.records) if r["candidate"] != old["candidate"])
    # another tuning run (here: another machine's of the same key) declares a new winner
    st.append([dict(old, candidate=loser["candidate"], config=loser["config"], run="later",
                    date="2027-01-02T03:04:05Z", median_s=old["median_s"] / 2)])
    r = subprocess.run([sys.executable, "-m", "fusebuild", "why", ART], cwd=proj.root, capture_output=True,
                       text=True, env=proj.env, check=False)
    a, b = old["config"]["micro_n"], loser["config"]["micro_n"]
    want = (f"render:{ART}: tuning: winner for this problem changed (micro_n {a} -> {b}, tuned on "
            f"{old['key']['device']}, 2027-01-02)")
    assert want in r.stdout, r.stdout + r.stderr
    assert proj.doit("build", check=0).ran_stage("render") == [f"render:{ART}"]
    assert report(proj)["schedule"]["resolved"]["micro_n"] == b


def test_a_wrong_result_never_wins(proj):
    """Every candidate built from a planted template that drops the bias: all recorded as
    wrong results, no winner, and the build falls back to the spec's hints."""
    out = tune(proj, ART, "--space", "micro_n=16", *FAST, env={"FUSEBUILD_TEMPLATE_OVERRIDES": str(PLANTED)})
    recs = records(proj)
    assert {r["status"] for r in recs} == {"wrong-result"} and len(recs) == 2, out
    assert "mismatches" in recs[0]["error"]
    assert "none (every candidate failed)" in tune(proj, ART, "--space", "micro_n=16", *FAST,
                                                   env={"FUSEBUILD_TEMPLATE_OVERRIDES": str(PLANTED)})
    proj.doit("build", check=0)
    assert report(proj)["schedule"]["source"] == "hint"
    # the templates changed back (other render code): every candidate is measured again, and passes
    out = tune(proj, ART, "--space", "micro_n=16", *FAST)
    assert "(measured with other render code: measuring again)" in out and "2 candidate(s), 0 recorded, 2 new" in out
    assert {r["status"] for r in records(proj)[len(recs):] if r["kind"] == "measurement"} == {"ok"}


def test_build_only_then_measure_and_a_planted_wrong_artifact(proj, tmp_path):
    """The GPU split, on the CPU: --build-only builds and writes tune.json, measures nothing;
    --measure (no doit importable) measures. One candidate's artifact is swapped for a planted
    wrong one in between: it is recorded as a wrong result and does not win."""
    out = tune(proj, ART, "--space", "micro_n=16,32", "--build-only", "-j", "2")
    assert "built 3/3 candidate(s)" in out and "fusebuild tune --measure" in out, out
    assert records(proj) == []
    manifest = json.loads(next((proj.root / "out" / ".tune").rglob("tune.json")).read_text())
    assert [c["status"] for c in manifest["candidates"]] == ["built"] * 3
    planted = Project(tmp_path / "planted")
    planted.spec("g", SPEC)
    planted.doit("build", check=None, env={"FUSEBUILD_TEMPLATE_OVERRIDES": str(PLANTED)})
    victim = manifest["candidates"][1]
    shutil.copy(planted.root / "out" / ART / "kernel.so", proj.root / "out" / victim["folder"] / "kernel.so")
    fake = tmp_path / "no-doit"
    (fake / "doit").mkdir(parents=True)
    (fake / "doit" / "__init__.py").write_text("raise ImportError('doit imported on the measuring path')\n")
    out = tune(proj, ART, "--measure", *FAST, env={"PYTHONPATH": f"{fake}:{REPO}"})
    by_id = {r["candidate"]: r for r in measured(records(proj))}
    assert by_id[victim["id"]]["status"] == "wrong-result", out
    assert sum(r["status"] == "ok" for r in by_id.values()) == 2
    win = next(r for r in records(proj) if r["kind"] == "winner")
    assert win["candidate"] != victim["id"]


def test_the_measuring_path_imports_no_build_toolchain(tmp_path):
    """What `fusebuild tune --measure` imports on a GPU machine (torch, the CUDA loader):
    no doit, TVM, TileLang or IREE, even when it reaches a tir-cuda manifest."""
    p = Project(tmp_path / "p")
    p.spec("c", SPEC.replace("float32", "bfloat16").replace("[tir-cpu]", "[tir-cuda]").replace("name: g", "name: c"))
    man = p.root / "out" / ".tune" / "c" / "M64_N96_K32" / "tir-cuda" / "tune.json"
    man.parent.mkdir(parents=True)
    man.write_text(json.dumps({"key": {"problem": "p", "target": "tir-cuda", "device": "NVIDIA H200", "toolchain": {}},
                               "candidates": [], "searched": [], "problem": "x"}))
    code = ("import sys\nfrom fusebuild.cli import main\nrc = main(['tune', '--measure'])\n"
            "import fusebuild.tune.measure, fusebuild.tune.runners, fusebuild.runtime.tir_cuda\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('doit', 'tvm', 'tilelang', 'iree')]\n"
            "assert not bad, bad\nprint('rc', rc)")
    r = subprocess.run([sys.executable, "-c", code], cwd=p.root, capture_output=True, text=True, env=p.env, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "cannot measure here" in r.stdout or "rc 0" in r.stdout, r.stdout


def test_the_tvm_runner_keeps_the_pool_from_spinning():
    """Spinning TVM workers slowed the next entry of a CPU round (torch 4.6x in one tune_cost run,
    bench/results/tune_cost.md): the measuring runner sets TVM_THREAD_POOL_SPIN_COUNT=0 before
    the pool starts, unless the user set it."""
    code = ("import os\nos.environ.pop('TVM_THREAD_POOL_SPIN_COUNT', None)\n"
            "from fusebuild.tune.runners import TvmRunner\nTvmRunner(None, [])\n"
            "print(os.environ['TVM_THREAD_POOL_SPIN_COUNT'])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert r.stdout.strip() == "0", r.stdout + r.stderr


@pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (Debian: apt-get install nginx-light)")
def test_records_travel_through_the_remote_cache(tmp_path):
    """Machine A tunes with a remote cache; machine B (fresh clone, empty local cache, no
    records file) builds with A's winner, and its own `fusebuild tune` measures nothing."""
    with NginxCache(tmp_path / "nginx") as server:
        a = Project(tmp_path / "a")
        a.spec("g", SPEC)
        a.env["FUSEBUILD_REMOTE_CACHE"] = server.url
        tune(a, ART, "--space", "micro_n=16,32", *FAST)
        win = next(r for r in records(a) if r["kind"] == "winner")
        assert any(f.startswith("ac/") for f in server.files())
        b = Project(tmp_path / "b")
        b.spec("g", SPEC)
        b.env["FUSEBUILD_REMOTE_CACHE"] = server.url
        b.doit("build", check=0)
        assert not (b.root / "tuning").exists()                  # a build never writes the records file
        assert report(b)["schedule"]["source"] == "tuned"
        assert report(b)["schedule"]["resolved"] == win["config"]
        out = tune(b, ART, "--space", "micro_n=16,32", "--dry-run")
        assert "from the cache" in out and not (b.root / "tuning").exists(), out   # a dry run writes nothing
        out = tune(b, ART, "--space", "micro_n=16,32", *FAST)
        assert "from the cache" in out and "nothing new to measure" in out, out
        assert len(records(b)) == len(records(a))                # merged into B's file, to commit


def test_mlir_cpu_hints_change_the_code_and_every_candidate_validates(tmp_path):
    """Data tiling on and off, and an explicit lowering_config: three different kernels
    (different artifacts), each checked against torch before it is timed."""
    p = Project(tmp_path / "p")
    p.spec("g", SPEC.replace("[tir-cpu]", "[mlir-cpu]"))
    art = ART.replace("tir-cpu", "mlir-cpu")
    tune(p, art, "--space", "data_tiling=0,1", *FAST)
    tiles = ["--space", "dist_m=32", "--space", "dist_n=32", "--space", "vec_m=8", "--space", "vec_n=16",
             "--space", "vec_k=1"]
    out = tune(p, art, *tiles, *FAST)
    recs = measured(records(p), anchor=False)
    assert len(recs) == 3 and {r["status"] for r in recs} == {"ok"}, out
    vmfbs = {f.parent.name: f.read_bytes() for f in (p.root / "out" / ".tune").rglob("kernel.vmfb")}
    assert sorted(vmfbs) == sorted(r["candidate"] for r in recs) and len(set(vmfbs.values())) == 3
    tiled = next(r for r in recs if r["config"].get("dist_m"))
    folder = next((p.root / "out" / ".tune").rglob(tiled["candidate"]))
    assert "distribution = [32, 32, 0]" in (folder / "executables.mlir").read_text()


def test_a_dynamic_m_artifact_is_tuned_at_its_sizes_and_builds_with_the_winner(tmp_path):
    """mlir-cpu, M in [1, 64]: each candidate is timed at the validated sizes (1, 7, 64) in one
    run, its record holds the per-size times and their geometric mean, the dynamic build uses
    the winner and says so, and the static artifact of the same shape (M = 64) does not (nor
    does the dynamic one take the static winner once that is tuned)."""
    p = Project(tmp_path / "p")
    p.spec("g", SPEC.replace("[tir-cpu]", "[mlir-cpu]"))
    p.spec("gd", SPEC.replace("[tir-cpu]", "[mlir-cpu]").replace("name: g", "name: gd")
           .replace("M: 64", "M: {dynamic: [1, 64]}"))
    dyn, static = "gd/M1to64_N96_K32/mlir-cpu", ART.replace("tir-cpu", "mlir-cpu")
    out = tune(p, dyn, "--space", "data_tiling=0,1", *FAST)
    assert "M1..64x96x32 float32" in out and "geomean of M=1" in out, out
    recs = records(p)
    ms = measured(recs)
    assert len(ms) == 2 and {r["status"] for r in ms} == {"ok"}, out
    for r in ms:
        assert [s["at"] for s in r["sizes"]] == [{"M": 1}, {"M": 7}, {"M": 64}]
        assert all(s["median_s"] > 0 and s["torch_s"] > 0 and s["samples"] == 3 for s in r["sizes"])
        assert r["samples"] == 3 and min(s["min_s"] for s in r["sizes"]) <= r["median_s"]    # a mean per round
        assert "geometric mean" in r["method"]["objective"]
    win = next(r for r in recs if r["kind"] == "winner")
    assert len(win["sizes"]) == 3
    p.doit("build", check=0)

    def sched(art):
        rep = json.loads((p.root / "out" / art / "validation.json").read_text())
        assert rep["status"] == "pass"
        return rep["schedule"]
    assert sched(dyn)["source"] == "tuned" and sched(dyn)["resolved"] == win["config"]
    assert sched(dyn)["tuning"]["timed_at"] == [{"M": 1}, {"M": 7}, {"M": 64}]
    assert sched(static)["source"] == "default"
    out = tune(p, static, "--space", "data_tiling=0,1", *FAST)
    assert "never tuned" in out and "geomean" not in out, out
    p.doit("build", check=0)
    assert sched(static)["source"] == "tuned" and "timed_at" not in sched(static)["tuning"]
    assert sched(dyn)["tuning"]["candidate"] == win["candidate"]


def test_a_pack_of_an_output_folder_outside_the_project_unpacks_under_its_name(proj, tmp_path):
    """--pack stores members relative to the output folder (`build/.tune/...`), so an output folder
    outside the working directory does not give `../..` members that tar strips on the way in."""
    import tarfile
    pack = tmp_path / "pack.tar.xz"
    out = tune(proj, ART, "--space", "micro_n=16", "--build-only", "--pack", str(pack),
               env={"FUSEBUILD_OUT": str(tmp_path / "elsewhere" / "build")})
    assert "FUSEBUILD_OUT=build fusebuild tune --measure" in out, out
    names = tarfile.open(pack).getnames()
    assert names and all(n.startswith("build/.tune/g/M64_N96_K32/tir-cpu/") for n in names), names
