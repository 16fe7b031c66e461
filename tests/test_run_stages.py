"""run/stages.py through real `doit`: a planted numeric bug (the bias dropped by a template
override) fails validation with max_abs over atol, and the summary says fail."""
from __future__ import annotations

import json
import re

import pytest

from conftest import REPO, gemm_spec


@pytest.mark.e2e
def test_planted_numeric_bug_is_caught(project):
    project.spec("one", gemm_spec("one"))
    project.env["FUSEBUILD_TEMPLATE_OVERRIDES"] = str(REPO / "tests/data/planted_drop_bias")
    r = project.doit("build")
    assert r.code != 0
    report = json.loads((project.root / "out/one/M8_N32_K16/tir-cpu/validation.json").read_text())
    assert report["status"] == "fail" and report["ratio"] > 1, report
    assert re.search(r"^one\s+M8_N32_K16\s+tir-cpu\s+fail", r.text, re.M), r.text
