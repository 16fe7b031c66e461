"""spec/schema.py: `fusebuild schema` is a valid JSON Schema (draft 2020-12); every shipped spec
validates against it; hostile specs are rejected by it AND by the loader; the committed
fusebuild-spec.schema.json is exactly what the generator prints."""
from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from fusebuild.cli import main
from fusebuild.errors import SpecError
from fusebuild.spec import parse_spec

from conftest import REPO, gemm_spec

COMMITTED = REPO / "fusebuild-spec.schema.json"
SHIPPED = sorted((REPO / "specs").glob("*.yaml"))


@pytest.fixture(scope="module")
def printed() -> str:
    """What `fusebuild schema` prints."""
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["schema"]) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def validator(printed):
    schema = json.loads(printed)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_committed_schema_is_the_generators_output(printed):
    assert COMMITTED.read_text() == printed, \
        "fusebuild-spec.schema.json is stale: regenerate it with `fusebuild schema > fusebuild-spec.schema.json`"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_spec_validates(validator, path):
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(
        yaml.safe_load(path.read_text()))]
    assert not errors, errors


def test_the_test_suites_gemm_spec_validates(validator):
    assert not list(validator.iter_errors(yaml.safe_load(gemm_spec())))


HOSTILE = [
    # what, replace in gemm_spec(), with
    ("name escapes out/", "name: small", "name: ../../etc"),
    ("tensor name with a path", "output: y,", "output: ../y,"),
    ("unknown op", "op: matmul", "op: matmull"),
    ("unknown top-level field", "seed: 3", "seed: 3\ntaregts: [tir-cpu]"),
    ("unknown target", "seed: 3", "seed: 3\ntargets: [tir-gpu]"),
    ("unknown hint", "seed: 3", "seed: 3\nschedule: {tir-cpu: {tile_q: 4}}"),
    ("hint out of range", "seed: 3", "seed: 3\nschedule: {tir-cpu: {tile_m: 0}}"),
    ("hint of the wrong type", "seed: 3", "seed: 3\nschedule: {tir-cpu: {tile_m: '64; rm -rf /'}}"),
    ("unknown mode", "seed: 3", "seed: 3\nmode: fast"),
    ("seed that is not an integer", "seed: 3", "seed: '3; rm -rf /'"),
    ("unknown dtype", "x: {shape: [M, K], dtype: float32}", "x: {shape: [M, K], dtype: float64}"),
    ("unknown input field", "{shape: [N], dtype: float32}", "{shape: [N], dtype: float32, device: cuda}"),
    ("param value with a path", "M: [4, 8]", "M: [4, '../8']"),
]


@pytest.mark.parametrize("what,old,new", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_specs_are_rejected_by_the_schema_and_the_loader(validator, what, old, new):
    text = gemm_spec()
    assert old in text
    text = text.replace(old, new, 1)
    assert list(validator.iter_errors(yaml.safe_load(text))), f"the schema accepts a spec with {what}"
    with pytest.raises(SpecError):
        parse_spec(text, "specs/hostile.yaml")
