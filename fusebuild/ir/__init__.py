"""The graph IR: dtypes, the op table, typed graphs and fusion, operand layouts.

Pure data and arithmetic: nothing here imports a toolchain, torch only inside the
ops' reference functions.
"""
