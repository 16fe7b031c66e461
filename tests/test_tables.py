"""tables.py: aligned columns; with a width, the widest columns are narrowed (cells clipped
with …) until every line fits; `clip` never returns more than it is asked for."""
from __future__ import annotations

from fusebuild.tables import MIN_COLUMN, clip, table


def test_clip():
    assert clip("abcdef", 6) == "abcdef" and clip("abcdefg", 6) == "abcde…" and len(clip("x" * 500, 120)) == 120


def test_table_aligns_and_fits_a_width():
    rows = [["short", "a" * 70, "pass"], ["s", "b" * 10, "emulated (no device run)"]]
    free = table(["spec", "variant", "status"], rows).splitlines()
    assert free[0] == "spec   variant" + " " * 65 + "status" and len(free[2]) > 60
    fitted = table(["spec", "variant", "status"], rows, width=60).splitlines()
    assert max(len(line) for line in fitted) <= 60
    assert fitted[2].startswith("short  aaaa") and "…" in fitted[2] and fitted[3].endswith("emulated (no device run)")
    tiny = table(["a", "b"], [["x" * 50, "y" * 50]], width=10).splitlines()
    assert len(tiny[2]) == 2 * MIN_COLUMN + 2            # never narrower than MIN_COLUMN per column
