"""Cell equations as small expression trees: the node types, ``Equation`` (one line of a
cell) and ``render`` (a tree back in equation notation), with the words of the language.

A cell is written for ONE example in textbook notation (docs/spec.md, Equations), one
assignment a line: ``h[t] = tanh(W_xh @ x[t] + W_hh @ h[t-1] + b_h)``. Lines become these
trees in ``equation_parser.py`` (through the whitelist of ``equation_whitelist.py``);
``shapes.py`` gives them shapes and the build turns them into graphs. It imports none of
them: whatever reads the trees needs only this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import Location

FUNCTIONS = ("tanh", "sigmoid", "relu", "exp", "log", "softmax", "concat")
OPERATORS = ("+", "-", "*", "/", "@")
RESERVED = (*FUNCTIONS, "x", "t")  # no parameter, state or local may take these names
NOWHERE = Location("<equation>")  # the location of nodes built by code, not parsed


@dataclass(frozen=True)
class _Node:
    # Where the node was written; no part of equality, so trees compare by their math.
    loc: Location = field(default=NOWHERE, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Number(_Node):
    value: float


@dataclass(frozen=True)
class Param(_Node):
    name: str


@dataclass(frozen=True)
class Input(_Node):
    """``x[t]``, the cell input at this step."""


@dataclass(frozen=True)
class State(_Node):
    """``s[t-1]`` when ``previous``, else ``s[t]`` (assigned by an earlier line)."""

    name: str
    previous: bool


@dataclass(frozen=True)
class Local(_Node):
    """A name assigned by an earlier equation line."""

    name: str


@dataclass(frozen=True)
class Call(_Node):
    function: str  # one of FUNCTIONS
    args: tuple


@dataclass(frozen=True)
class Binary(_Node):
    """``left op right``; when parsed, ``loc`` is the operator's place."""

    op: str  # one of OPERATORS
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Negate(_Node):
    operand: Expr


Expr = Number | Param | Input | State | Local | Call | Binary | Negate


@dataclass(frozen=True)
class Equation:
    """One line: ``target = expr``, or ``target[t] = expr`` when ``is_state``."""

    target: str
    is_state: bool
    expr: Expr
    text: str  # the line without its comment, for comments in generated code
    loc: Location


# ---------------------------------------------------------------------------- render

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "@": 2}
_UNARY, _ATOM = 3, 4


def render(expr: Expr) -> str:
    """The expression in equation notation, with only the parentheses it needs."""
    return _render(expr)[0]


def _render(expr: Expr) -> tuple[str, int]:
    """(text, precedence of its outermost operation)."""
    if isinstance(expr, Binary):
        precedence = _PRECEDENCE[expr.op]
        # Left-associative: a right operand of equal precedence needs parentheses.
        left, right = _wrap(expr.left, precedence), _wrap(expr.right, precedence + 1)
        return f"{left} {expr.op} {right}", precedence
    if isinstance(expr, Negate):
        return "-" + _wrap(expr.operand, _UNARY), _UNARY
    if isinstance(expr, Number):
        value = expr.value
        text = str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
        return text, _UNARY if text.startswith("-") else _ATOM
    if isinstance(expr, Call):
        return f"{expr.function}({', '.join(map(render, expr.args))})", _ATOM
    if isinstance(expr, State):
        return f"{expr.name}[t-1]" if expr.previous else f"{expr.name}[t]", _ATOM
    return ("x[t]" if isinstance(expr, Input) else expr.name), _ATOM


def _wrap(expr: Expr, at_least: int) -> str:
    text, precedence = _render(expr)
    return text if precedence >= at_least else f"({text})"
