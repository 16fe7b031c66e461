"""engine/progress.py through real `doit`: quiet, tty (a live line, no up-to-date list) and the
summary that stays in every mode."""
from __future__ import annotations

import re

import pytest

from conftest import gemm_spec


@pytest.mark.e2e
@pytest.mark.slow
def test_progress_modes(project):
    path = project.spec("one", gemm_spec("one"))
    project.doit("build", check=0)
    quiet = project.doit("build", check=0, env={"FUSEBUILD_PROGRESS": "quiet"})
    assert quiet.text.strip().startswith("fusebuild: 0 ran, 8 up to date, 0 failed"), quiet.text
    path.write_text(gemm_spec("one").replace("seed: 3", "seed: 9"))
    tty = project.doit("build", check=0, env={"FUSEBUILD_PROGRESS": "tty"})
    assert "\x1b[K[" in tty.text and "-- render" not in tty.text     # live line (\r reads as \n here), no up-to-date list
    ran = re.findall(r"^(?:\x1b\[K)?\.  (\S+)", tty.text, re.M)            # lines follow a cleared status line
    assert sorted(ran) == [f"validate:one/M{m}_N32_K16/tir-cpu" for m in (4, 8)], tty.text
    assert re.search(r"^one\s+M8_N32_K16\s+tir-cpu\s+pass", tty.text, re.M)  # the summary stays
