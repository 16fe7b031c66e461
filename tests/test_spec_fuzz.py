"""Spec fuzzing (issue 15, "done means"): a few hundred seeded hostile specs.

Every spec is loaded in a child process under a memory limit (RLIMIT_AS) with a per-spec
timer: none may raise anything but its one SpecError naming file and line, take more than a
few seconds, or exhaust memory. Then one real `doit build` runs over all of them plus a
good spec: the good spec builds and passes, no traceback is printed, every broken spec
fails its own task with a `file:line:` message, and nothing is written outside out/.
"""
from __future__ import annotations

import copy
import json
import os
import random
import re
import subprocess
import sys
import textwrap

import pytest
import yaml
from conftest import REPO

SEED, COUNT = 15, 300
GOOD = {
    "name": "op",
    "description": "fuzzed",
    "params": {"M": [2, 4], "N": 8, "K": 16, "dtype": "float32"},
    "inputs": {"x": {"shape": ["M", "K"], "dtype": "$dtype"},
               "w": {"shape": ["N", "K"], "dtype": "$dtype", "layout": {"tiled": [4, 8]}},
               "b": {"shape": ["N"], "dtype": "$dtype"}},
    "graph": [{"op": "matmul", "inputs": ["x", "w"], "output": "y", "transpose_b": True,
               "epilogue": [{"add": "b"}, "silu"]}],
    "outputs": ["y"],
    "targets": ["tir-cpu"],
    "tolerance": {"float32": {"atol": 1e-3}},
    "seed": 1,
    "schedule": {"tir-cpu": {"tile_m": 64}},
    "mode": "fused",
}
VALUES = [None, [], {}, "", "x" * 5000, -1, 0, 2**70, 1e308, float("inf"), float("nan"), True, [1, [2, [3]]],
          {"a": {"b": 1}}, "\x1b]0;pwned\x07", "a\nb", "../../etc/passwd", "$undefined", "*".join(["M"] * 200),
          "__import__('os').system('touch PWNED')", "{{ 7*7 }}", ["matmul"], {"matmul": 1}, "\u202eevil",
          "M" * 300, [[[1, 2]]] * 50, list(range(1000)), "1e-3", "0x10", {"dims": [[[1, 10**12]]]}]


def dump(doc) -> str:
    return yaml.dump(doc, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), allow_unicode=True, width=10**6,
                     sort_keys=False)


def paths(obj, prefix=()):
    """Every (path) to a value inside obj."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from paths(v, prefix + (i,))


def set_at(obj, path, value):
    for p in path[:-1]:
        obj = obj[p]
    obj[path[-1]] = value


GOOD_PATHS = [p for p in paths(GOOD) if p]


def structural(rng) -> str:
    doc = copy.deepcopy(GOOD)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(GOOD_PATHS)
        kind = rng.random()
        try:
            if kind < 0.6:
                set_at(doc, path, copy.deepcopy(rng.choice(VALUES)))
            elif kind < 0.75:
                parent = doc
                for p in path[:-1]:
                    parent = parent[p]
                del parent[path[-1]]
            elif kind < 0.85:
                doc[rng.choice(["taregts", "\x00", "name ", "graph\n"])] = copy.deepcopy(rng.choice(VALUES))
            else:                   # a long graph, written as text (dumping 3,000 nodes is slow)
                n = rng.choice([2, 300, 3000])
                doc.pop("graph", None)
                return dump(doc) + "graph:\n" + "".join(
                    f"- {{op: matmul, inputs: [x, w], output: y{i}, transpose_b: true}}\n" for i in range(n))
        except (KeyError, IndexError, TypeError):
            pass
    return dump(doc)


def alias_bomb(rng) -> str:
    width, depth = rng.randint(2, 12), rng.randint(3, 12)
    rows = [f"l0: &l0 [{', '.join(['x'] * width)}]"]
    rows += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, depth)]
    where = rng.choice(["description", "params", "tolerance"])
    return dump(GOOD) + f"{where}_:\n" + "".join(f"  {r}\n" for r in rows) + f"{where}: *l{depth - 1}\n"


def nesting(rng) -> str:
    n = rng.choice([40, 100, 500, 999, 5000])
    if rng.random() < 0.5:
        return dump(GOOD) + "description: " + "[" * n + "]" * n + "\n"
    return dump(GOOD) + "description:\n" + "".join("  " * i + "- \n" for i in range(min(n, 300)))


def raw_bytes(rng) -> bytes:
    good = dump(GOOD).encode()
    cut = rng.randint(0, len(good))
    junk = bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 40)))
    return good[:cut] + junk + good[cut:] if rng.random() < 0.7 else good[:cut]


def literals(rng) -> str:
    text = dump(GOOD)
    kind = rng.random()
    if kind < 0.3:
        return text.replace("N: 8", "N: " + "9" * rng.choice([21, 100, 5000, 50000]))
    if kind < 0.6:
        expr = rng.choice(["+", "*", "//", "%", "-"]).join(["M"] * rng.choice([10, 100, 1000, 30000]))
        return text.replace("- M\n  - K", f"- '{expr}'\n  - K", 1)
    if kind < 0.8:
        return text.replace("name: op", "name: " + rng.choice(
            ["!!python/object/apply:os.system ['touch PWNED']", "&a x\nname2: *a", "'op\\u0000'", '"op\\e[2J"']))
    return text + "params:\n  P: [" + ", ".join(str(i) for i in range(1, rng.choice([300, 10**4]))) + "]\n"


def corpus(seed=SEED, count=COUNT) -> list:
    """[(file name, bytes)] of hostile specs, all distinct names, reproducible from `seed`."""
    rng = random.Random(seed)
    makers = [structural] * 6 + [alias_bomb, nesting, raw_bytes, literals, literals]
    out = []
    for i in range(count):
        maker = rng.choice(makers)
        data = maker(rng)
        ext = rng.choice([".yaml", ".yml"])
        out.append((f"h{i:03d}_{maker.__name__}{ext}", data if isinstance(data, bytes) else data.encode()))
    out.append(("f\n@__import__('os').system('touch PWNED')\ndef f(): pass\n#.yaml", dump(GOOD).encode()))
    out.append(("good.yml", dump(dict(GOOD, name="good", graph="oops")).encode()))
    return out


CHILD = textwrap.dedent("""
    import json, resource, signal, sys, time
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))      # 1 GiB for the whole process
    from fusebuild.errors import SpecError
    from fusebuild.spec import load_spec

    class Slow(Exception):
        pass

    def alarm(*_):
        raise Slow()
    signal.signal(signal.SIGALRM, alarm)
    for path in sys.argv[1:]:
        start = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, 5.0)
        try:
            load_spec(path)
            out = {"ok": True}
        except SpecError as err:
            out = {"error": str(err), "path": err.path, "line": err.line}
        except Slow:
            out = {"slow": True}
        except BaseException as err:
            out = {"crash": f"{type(err).__name__}: {err}"[:300]}
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        out.update(file=path, seconds=round(time.perf_counter() - start, 3))
        print(json.dumps(out), flush=True)
""")


def write_corpus(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in corpus():
        (folder / name).write_bytes(data)


def test_corpus_is_seeded_and_varied():
    a, b = corpus(), corpus()
    assert a == b and len(a) == COUNT + 2
    kinds = {re.sub(r"^h\d+_|\.ya?ml$", "", n) for n, _ in a}
    assert {"structural", "alias_bomb", "nesting", "raw_bytes", "literals"} <= kinds


@pytest.mark.slow
def test_every_hostile_spec_is_one_bounded_error(tmp_path):
    write_corpus(tmp_path / "specs")
    files = sorted(str(p) for p in (tmp_path / "specs").iterdir())
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", CHILD, *files], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tmp_path, check=False)
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(results) == len(files), proc.stderr[-3000:]
    for r in results:
        assert "crash" not in r and "slow" not in r, r
        assert r["seconds"] < 5, r
        if "error" in r:
            assert r["path"] == r["file"] and isinstance(r["line"], int) and r["line"] >= 1, r
            assert "\n" not in r["error"] and "\x1b" not in r["error"], r
            assert re.match(r"^.+:\d+: ", r["error"]), r
    assert sum("error" in r for r in results) > COUNT * 0.9          # hostile means refused, nearly always
    assert not list(tmp_path.rglob("PWNED"))


@pytest.mark.e2e
@pytest.mark.slow
def test_one_build_over_the_corpus_still_builds_the_good_spec(project):
    write_corpus(project.root / "specs")
    project.spec("good", dump(dict(GOOD, name="good", params={"M": 2, "N": 8, "K": 16, "dtype": "float32"})))
    before = {p for p in project.root.rglob("*") if "out" not in p.relative_to(project.root).parts}
    result = project.doit("build")
    assert result.code != 0
    assert "Traceback" not in result.text and "\x1b" not in result.text, result.text[-5000:]
    report = json.loads((project.root / "out/good/M2_N8_K16_float32/tir-cpu/validation.json").read_text())
    assert report["status"] == "pass"
    failed = re.findall(r"^TaskFailed - taskid:build:(.+)$", result.text, re.MULTILINE)
    assert len(failed) >= COUNT * 0.9 and len(set(failed)) == len(failed)
    messages = re.findall(r"^TaskFailed - taskid:build:.+\n(.*)$", result.text, re.MULTILINE)
    assert all(re.match(r"^.+:\d+: ", m) for m in messages), [m for m in messages if not re.match(r"^.+:\d+: ", m)]
    after = {p for p in project.root.rglob("*") if "out" not in p.relative_to(project.root).parts}
    assert after == before                                            # nothing written outside out/
    assert not list(project.root.parent.rglob("PWNED"))
