"""``calculator``: arithmetic by walking the AST, never ``eval``."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from shared.tools.base import Tool, ToolContext, ToolFailure

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt,
    "log": math.log,
    "log10": math.log10,
    "exp": math.exp,
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "ceil": math.ceil,
    "floor": math.floor,
}
_CONSTS = {"pi": math.pi, "e": math.e}
MAX_EXPONENT = 1000
MAX_INT_BITS = 4096
Number = float | int
MAX_LENGTH = 500


class CalculatorInput(BaseModel):
    expression: str = Field(max_length=MAX_LENGTH, description="Arithmetic, e.g. '(1200 - 300) * 1.07 ** 3'.")


def evaluate(expression: str) -> float | int:
    """The value of an arithmetic expression; :class:`ToolFailure` on anything else."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ToolFailure(f"not an arithmetic expression: {exc.msg}") from None
    return _eval(tree.body)


def _number(value: Any) -> Number:
    if isinstance(value, complex):  # e.g. (-8) ** 0.5
        raise ToolFailure("the result is a complex number")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:  # keeps chained powers from eating the CPU
        raise ToolFailure("the result is too large")
    return value  # type: ignore[no-any-return]


def _eval(node: ast.AST) -> Number:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name) and node.id in _CONSTS:
        return _CONSTS[node.id]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _number(_UNARY[type(node.op)](_eval(node.operand)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ToolFailure(f"exponent {right} is too large (max {MAX_EXPONENT})")
        try:
            return _number(_BINARY[type(node.op)](left, right))
        except (ZeroDivisionError, OverflowError, ValueError) as exc:
            raise ToolFailure(str(exc)) from None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS and not node.keywords:
        try:
            return _number(_FUNCS[node.func.id](*[_eval(a) for a in node.args]))
        except (TypeError, ValueError, OverflowError) as exc:
            raise ToolFailure(f"{node.func.id}: {exc}") from None
    raise ToolFailure(
        f"unsupported element {ast.dump(node)[:60]}; only numbers, + - * / // % **, and "
        f"{', '.join(sorted(_FUNCS))} are allowed"
    )


async def _run(ctx: ToolContext, args: CalculatorInput) -> dict[str, float | int]:
    return {"result": evaluate(args.expression)}


CALCULATOR = Tool(
    "calculator", "Evaluate an arithmetic expression exactly (no code execution).", CalculatorInput, _run
)
