"""What travels to a worker: JSON data that is checked again where it lands (no cluster)."""
from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import pytest
from conftest import REPO, gemm_spec, variants

from fusebuild.backends import TARGETS, get_backend
from fusebuild.backends.base import Toolchain
from fusebuild.distributed import payload as P
from fusebuild.distributed import placement, worker
from fusebuild.plan import keys
from fusebuild.plan.artifacts import Artifact
from fusebuild.spec import load_spec

SHIPPED = sorted((REPO / "specs").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_variant_travels_and_comes_back_equal(path):
    for v in load_spec(path).variants:
        back = P.variant_from(json.loads(P.dumps(P.variant_data(v))), TARGETS)
        assert back.graph == v.graph and back.graph.digest() == v.graph.digest()
        assert (back.params, back.schedule, back.seed, back.tolerance, back.mode, back.targets) == \
               (v.params, v.schedule, v.seed, v.tolerance, v.mode, v.targets)
        # order is kept (hints and tensors render in the order given)
        assert list(back.graph.tensors) == list(v.graph.tensors)


def _variant_data():
    return P.variant_data(variants(gemm_spec(), "tir-cpu")[0])


@pytest.mark.parametrize("edit,what", [
    (lambda d: d["graph"]["tensors"][0].__setitem__(0, "x; import os"), "bad tensor name"),
    (lambda d: d["graph"]["nodes"][0].__setitem__("op", "__import__"), "bad op"),
    (lambda d: d["graph"]["nodes"][0]["attrs"].append(["transpose_b", "yes"]), "matmul.transpose_b"),
    (lambda d: d["graph"]["nodes"][0]["attrs"].append(["code", "print(1)"]), "bad attribute of matmul"),
    (lambda d: d["graph"]["tensors"][0].__setitem__(2, "float64"), "bad dtype"),
    (lambda d: d["graph"]["tensors"][0].__setitem__(1, [4, -16]), "bad shape"),
    (lambda d: d.__setitem__("name", "../../etc"), "bad variant name"),
    (lambda d: d.__setitem__("spec", "a b"), "bad spec name"),
    (lambda d: d.__setitem__("schedule", {"tir-cpu": {"tile_m": "{{ 7*7 }}"}}), "must be an integer"),
    (lambda d: d.__setitem__("schedule", {"tir-cpu": {"unroll_everything": 1}}), "bad tir-cpu hint"),
    (lambda d: d.__setitem__("mode", "shell"), "bad mode"),
    (lambda d: d.__setitem__("extra", 1), "bad variant"),
])
def test_the_worker_refuses_what_no_spec_loader_makes(edit, what):
    data = _variant_data()
    edit(data)
    with pytest.raises(P.BadPayload, match=what.replace("(", r"\(")):
        P.variant_from(data, TARGETS)


def test_a_layout_must_cover_its_tensor():
    spec = gemm_spec().replace("w: {shape: [N, K], dtype: float32}", "w: {shape: [N, K], dtype: float32, "
                                                                     "layout: {tiled: [8, 8]}}")
    data = P.variant_data(variants(spec, "tir-cpu")[0])
    w = next(t for t in data["graph"]["tensors"] if t[0] == "w")
    assert w[3]["form"] == "tiled[8,8]"
    assert P.variant_from(copy.deepcopy(data), TARGETS).graph.tensors["w"].layout.form == "tiled[8,8]"
    w[3]["dims"][0] = [[999, 1]]
    with pytest.raises(P.BadPayload, match="layout of w"):
        P.variant_from(data, TARGETS)


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "", "a/../../b"])
def test_file_names_from_a_payload_stay_inside_the_task_folder(name):
    with pytest.raises(P.BadPayload):
        P.relative_name(name)


def test_a_task_is_fusebuild_code_by_reference_and_a_json_string():
    """cloudpickle (what Dask uses) sends `worker.run` by name: the worker imports its own
    fusebuild; the argument is text. A non-text payload is refused, never unpickled."""
    import cloudpickle
    blob = cloudpickle.dumps(worker.run)
    assert b"fusebuild.distributed.worker" in blob and len(blob) < 200
    assert pickle.loads(blob) is worker.run
    out = json.loads(worker.run(pickle.dumps({"stage": "render"})))
    assert "a task payload is a JSON string" in out["error"] and "@" in out["worker"]
    out = json.loads(worker.run(P.dumps({"stage": "rm -rf", "target": "tir-cpu"})))
    assert "bad stage" in out["error"]


def test_compile_keys_read_only_target_and_folder(tmp_path):
    """The coordinator and the worker compute compile/assemble keys from (target, folder):
    the same key as the artifact's, so the worker can check it."""
    v = variants(gemm_spec(), "tir-cpu")[0]
    a = Artifact(v, "tir-cpu", tmp_path)
    a.dir.mkdir(parents=True)
    (a.dir / "kernel.py").write_text("x")
    (a.dir / "plan.json").write_text("{}")
    b, tc = get_backend("tir-cpu"), Toolchain(True, {"apache-tvm": "1"})
    for stage in ("compile", "assemble"):
        assert (getattr(keys, stage)(a, b, tc).cache_key()
                == getattr(keys, stage)(worker.Where("tir-cpu", a.dir), b, tc).cache_key())


def test_a_worker_whose_key_differs_refuses_and_names_the_field():
    mine = {"code": "aaa", "versions": {"apache-tvm": "0.27.0", "llvm-host": "zen5"}, "inputs": {"kernel.py": "1"}}
    theirs = {"code": "aaa", "versions": {"apache-tvm": "0.26.0", "llvm-host": "zen5"}, "inputs": {"kernel.py": "1"}}
    worker._same(mine, dict(mine), "tir-cpu", "w@h")
    with pytest.raises(worker.WrongWorker) as err:
        worker._same(mine, theirs, "tir-cpu", "w@h")
    assert "versions.apache-tvm: '0.27.0' here, '0.26.0' on the coordinator" in str(err.value)
    assert "llvm-host" not in str(err.value)


def test_depfile_paths_are_shown_as_the_coordinator_shows_them(tmp_path):
    dirs = [(tmp_path / "templates0", "/home/me/overrides/tir"), (tmp_path / "templates1", "templates/tir")]
    assert worker._shown(str(tmp_path / "templates1/kernel.py.j2"), dirs) == "templates/tir/kernel.py.j2"
    assert worker._shown(str(tmp_path / "templates0/a/ops.j2"), dirs) == "/home/me/overrides/tir/a/ops.j2"


def test_placement_reads_the_registry():
    assert placement.needs(TARGETS["tir-cuda"], "compile") == ({"tilelang": 1},)
    assert placement.needs(TARGETS["tir-cuda"], "validate") == ({"GPU": 1},)
    assert placement.needs(TARGETS["tir-cuda"], "render") == ({},)
    assert placement.needs(TARGETS["tir-cpu"], "compile") == ({},)
    assert placement.needs(TARGETS["mlir-aie"], "validate") == ({"NPU": 1}, {})
    workers = {"a": {"resources": {"tilelang": 1.0}}, "b": {"resources": {}}}
    assert placement.first_offered(({"tilelang": 1},), workers) == {"tilelang": 1}
    assert placement.first_offered(({"GPU": 1},), workers) is None
    assert placement.first_offered(({"NPU": 1}, {}), workers) == {}
    assert placement.first_offered(({},), {}) is None
    assert placement.missing(({"GPU": 1},)) == "no worker with GPU"
    assert placement.missing(({"aiecc": 1}, {})) == "no worker (the scheduler has none)"
    assert placement.describe({"GPU": 2, "tilelang": 1}) == "GPU=2 and tilelang"


def test_template_search_override_is_per_context(tmp_path):
    from fusebuild.backends.templating import SEARCH, TEMPLATES, template_dirs
    token = SEARCH.set([str(tmp_path)])
    try:
        assert template_dirs("tir") == [Path(tmp_path)]
    finally:
        SEARCH.reset(token)
    assert template_dirs("tir")[-1] == TEMPLATES / "tir"
