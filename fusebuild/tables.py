"""Plain-text tables for the console (no doit import: gpu-validate and the runtime use them too)."""
from __future__ import annotations

MIN_COLUMN = 8          # a column narrowed to fit a width keeps at least this many characters


def fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.2e}"
    return str(x)


def clip(text: str, width: int) -> str:
    """`text`, cut to `width` characters with a trailing … when longer."""
    return text if len(text) <= width else text[:width - 1] + "…"


def table(header, rows, rule: bool = True, width: int | None = None) -> str:
    """Left-aligned columns, two spaces apart; a rule under the header. With `width`, the
    widest columns are narrowed (their cells clipped with …) until every line fits."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)] if rows else [len(h) for h in header]
    if width is not None:
        while sum(widths) + 2 * (len(widths) - 1) > width and max(widths) > MIN_COLUMN:
            widths[widths.index(max(widths))] -= 1

    def line(cells):
        return "  ".join(clip(str(c), w).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(header)] + ([line(["-" * w for w in widths])] if rule else []) + [line(r) for r in rows])
