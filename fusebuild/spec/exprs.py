"""Shape expressions: integers, parameter names, and + - * // % of them.

A shape entry such as `2*N` or `K // 4` is parsed with `ast` and evaluated by walking the
tree; nothing is ever passed to `eval`, so a spec cannot run code through a shape.
"""
from __future__ import annotations

import ast
import operator

from ..errors import quote

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}


class ExprError(ValueError):
    pass


def names(expr) -> set:
    """The parameter names an expression uses (empty for an integer or text that does not parse)."""
    if not isinstance(expr, str):
        return set()
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def eval_int(expr, params: dict) -> int:
    """Evaluate one shape entry against integer parameters."""
    if isinstance(expr, bool):
        raise ExprError(f"{quote(expr)} is a boolean, not a size")
    if isinstance(expr, int):
        return expr
    if not isinstance(expr, str):
        raise ExprError(f"{quote(expr)} is not an integer or an expression of parameters")
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError:
        raise ExprError(f"{quote(expr)} is not a valid expression") from None
    return _walk(tree.body, params, expr)


def _walk(node, params, text):
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in params:
            raise ExprError(f"undefined parameter {quote(node.id)} in {quote(text)}")
        value = params[node.id]
        if not isinstance(value, int) or isinstance(value, bool):
            raise ExprError(f"parameter {quote(node.id)} is {quote(value)}, not an integer, in {quote(text)}")
        return value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _walk(node.left, params, text), _walk(node.right, params, text)
        if isinstance(node.op, (ast.FloorDiv, ast.Mod)) and right == 0:
            raise ExprError(f"division by zero in {quote(text)}")
        return _BINOPS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_walk(node.operand, params, text)
    raise ExprError(f"{quote(text)} may only use integers, parameter names and + - * // %")
