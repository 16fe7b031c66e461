"""Plain-text tables for the console (no doit import: gpu-validate and the runtime use them too)."""
from __future__ import annotations


def fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.2e}"
    return str(x)


def table(header, rows, rule: bool = True) -> str:
    """Left-aligned columns, two spaces apart; a rule under the header."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)] if rows else [len(h) for h in header]

    def line(cells):
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(header)] + ([line(["-" * w for w in widths])] if rule else []) + [line(r) for r in rows])
