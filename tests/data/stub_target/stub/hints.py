"""The stub target's schedule hints, declared once (the spec loader checks specs against them)."""
from fusebuild.backends.hints import Hint, table

HINTS = table(
    Hint("unroll", "how many times the kernel's body is written out (the stub records it, nothing more)", 1, 1, 8),
)
