"""plan/project.py: FUSEBUILD_MODE, read when the project plans, overrides each spec's mode;
a bad value is one error naming the setting and the valid modes."""
from __future__ import annotations

import pytest

from fusebuild.errors import SpecError
from fusebuild.plan.artifacts import with_mode
from fusebuild.plan.project import MODE_SETTING, invocation_mode

from conftest import swiglu_artifact as artifact


def test_invocation_mode_overrides_the_spec(monkeypatch):
    a = artifact("fused")
    monkeypatch.delenv(MODE_SETTING, raising=False)
    assert with_mode([a], invocation_mode())[0].variant.mode == "fused"
    monkeypatch.setenv(MODE_SETTING, "compare")
    assert with_mode([a], invocation_mode())[0].variant.mode == "compare"
    monkeypatch.setenv(MODE_SETTING, "comapre")
    with pytest.raises(SpecError) as info:
        invocation_mode()
    assert str(info.value) == ("environment variable FUSEBUILD_MODE: unknown mode 'comapre'; did you mean 'compare'? "
                               "(valid: compare, fused, reference, separate)")
