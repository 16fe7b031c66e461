"""plan/keys.py: what is in each stage's key (here: the mode is in the validate key)."""
from __future__ import annotations

from fusebuild.backends import get_backend
from fusebuild.backends.base import Toolchain
from fusebuild.plan import keys

from conftest import swiglu_artifact as artifact


def test_mode_is_in_the_validate_key():
    tc, backend = Toolchain(True), get_backend("mlir-cpu")
    assert keys.validate(artifact("fused"), backend, tc).fields != keys.validate(artifact("compare"), backend, tc).fields
