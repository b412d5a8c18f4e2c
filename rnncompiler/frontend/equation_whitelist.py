"""One equation line -> an ``Equation``: Python's own parser, then a whitelist.

Each line goes through ``ast.parse`` and then through a whitelist: only the node types
the spec allows (docs/spec.md, Equations) become expression nodes; anything else is an
``EquationError`` at the line and column of the offending node. Nothing is ever evaluated
or compiled to code. The parser remembers what earlier lines assigned, so that a name is
used only after its line and assigned once. This is the one place that decides what an
equation may contain; the lines of a cell are driven through it by ``equation_parser.py``.
"""

from __future__ import annotations

import ast
import keyword
import math
import re
import warnings
from collections.abc import Collection, Sequence
from typing import ClassVar

from ..errors import EquationError, Location, did_you_mean, one_of
from .equations import (
    FUNCTIONS,
    NOWHERE,
    RESERVED,
    Binary,
    Call,
    Equation,
    Expr,
    Input,
    Local,
    Negate,
    Number,
    Param,
    State,
)

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATOR_WORDS = ("and", "or", "not", "in", "is", "if", "else", "lambda", "for")

MAX_LINE_LENGTH = 1000
MAX_DEPTH = 100  # keeps parsing, render and shape checks far from Python's recursion limit

# `name = ...` or `name[...] = ...`: what a line that failed meant to assign
_TARGET = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[[^\]]*\])?\s*=(?!=)")


_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.MatMult: "@"}
_ADVICE = {"**": "write x * x", "//": "use /"}
_REJECTED = {ast.Compare: "comparisons", ast.BoolOp: "`and` and `or`", ast.IfExp: "`if`",
             ast.Lambda: "lambda", ast.NamedExpr: "`:=`", ast.Attribute: "attributes",
             ast.Starred: "`*` unpacking", ast.JoinedStr: "f-strings", ast.Slice: "slices"}
_CALLABLE = "only tanh, sigmoid, relu, exp, log, softmax and concat can be called"


def _is_step(node: ast.expr, previous: bool) -> bool:
    """Whether ``node`` is the index ``t``, or ``t-1`` when ``previous``."""
    if previous:
        return (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub)
                and _is_step(node.left, False) and isinstance(node.right, ast.Constant)
                and type(node.right.value) is int and node.right.value == 1)
    return isinstance(node, ast.Name) and node.id == "t"


class LineParser:
    """Parses lines in order, remembering what earlier lines assigned.

    Params, states, locals and functions share one namespace.
    """

    def __init__(self, params: Collection[str], states: Sequence[str]):
        self.params, self.states = frozenset(params), tuple(states)
        self.locals: dict[str, Location] = {}  # local -> its line
        self.assigned: dict[str, Location] = {}  # state -> the line that assigned s[t]
        self.code, self.base = "", NOWHERE  # the line being parsed; code[0] is at base

    def at(self, where: ast.AST | int) -> Location:
        # The code is ASCII (checked before parsing), so ast's UTF-8 byte offsets
        # are character offsets.
        return self.base.shifted(where if isinstance(where, int) else where.col_offset)

    def error(self, message: str, where: ast.AST | int) -> EquationError:
        return EquationError(message, self.at(where))

    def source(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.code, node) or type(node).__name__

    def parse_line(self, text: str, loc: Location) -> Equation | None:
        if len(text) > MAX_LINE_LENGTH:
            raise EquationError(f"line is {len(text)} characters long, more than the limit "
                                f"of {MAX_LINE_LENGTH}; split it into several equations", loc)
        code = text.split("#", 1)[0]
        self.code = code.strip(" \t")
        self.base = loc.shifted(len(code) - len(code.lstrip(" \t")))
        if not self.code:
            return None
        assignment = self.assignment()
        target, is_state = self.target(assignment.targets[0])
        expr = self.convert(assignment.value, 0)
        # Registered only now, so that `a = a + 1` and `h[t] = h[t]` are errors.
        (self.assigned if is_state else self.locals)[target] = self.base
        return Equation(target, is_state, expr, self.code, self.base)

    def assume_assigned(self, text: str, loc: Location) -> None:
        """After ``text`` failed: the name it meant to assign counts as assigned."""
        match = _TARGET.match(text.split("#", 1)[0])
        name = match and match.group(1)
        if not name or name in RESERVED or name in self.params:
            return
        if name in self.states:
            self.assigned.setdefault(name, loc)
        else:
            self.locals.setdefault(name, loc)

    def assignment(self) -> ast.Assign:
        for i, char in enumerate(self.code):
            if not (" " <= char <= "~" or char == "\t"):
                raise self.error(f"unexpected character {char!r} (U+{ord(char):04X}); "
                                 "equations are written in ASCII", i)
        try:
            with warnings.catch_warnings():  # e.g. `1or b`: our own error follows
                warnings.simplefilter("ignore")
                body = ast.parse(self.code, mode="exec").body
        except SyntaxError as error:
            for match in _WORD.finditer(self.code):  # a keyword where a name was meant
                first = match.start() == 0  # the name being assigned
                if keyword.iskeyword(match.group()) and (
                        first or match.group() not in _OPERATOR_WORDS):
                    raise self.error(f"'{match.group()}' is a Python keyword, which equations "
                                     "cannot use as a name; rename it", match.start()) from None
            column = min(max((error.offset or 1) - 1, 0), len(self.code))
            raise self.error(f"invalid equation syntax: {error.msg}", column) from None
        except (RecursionError, MemoryError, ValueError):
            raise self.error("equation too complex to parse; split it", 0) from None
        if len(body) > 1:
            raise self.error("write one equation per line", body[1])
        if isinstance(body[0], ast.AugAssign):
            raise self.error("augmented assignment such as `+=` is not supported; assign "
                             "each name once, as `name = expression`", body[0])
        if not isinstance(body[0], ast.Assign):
            raise self.error("an equation must be one assignment `name = expression`", body[0])
        if len(body[0].targets) > 1:
            raise self.error("write one `name = expression` a line, not `a = b = ...`",
                             body[0].targets[1])
        return body[0]

    def target(self, node: ast.expr) -> tuple[str, bool]:
        if isinstance(node, ast.Name):
            return self.new_local(node), False
        if isinstance(node, ast.Subscript) and getattr(node.value, "id", None) in self.states:
            return self.new_state(node), True
        if isinstance(node, (ast.Tuple, ast.List)):
            raise self.error("assign one name per line", node)
        states = ", ".join(f"{name}[t]" for name in self.states) or "none"
        raise self.error("the left side must be a new name or a state written s[t] "
                         f"(states: {states})", node)

    def new_local(self, node: ast.Name) -> str:
        name = node.id
        if name in RESERVED or name in self.params:
            what = "a parameter" if name in self.params else "reserved"
            raise self.error(f"'{name}' is {what}; choose another name", node)
        if name in self.states:
            raise self.error(f"'{name}' is a state; assign it as {name}[t] = ...", node)
        if name in self.locals:
            raise self.error(f"'{name}' is already assigned on line {self.locals[name].line};"
                             " a name is assigned once", node)
        return name

    def new_state(self, node: ast.Subscript) -> str:
        name = node.value.id
        if not _is_step(node.slice, False):
            raise self.error(f"assign the state as {name}[t] = ...", node)
        if name in self.assigned:
            raise self.error(f"state {name} is already assigned on line "
                             f"{self.assigned[name].line}; assign it once", node)
        return name

    def convert(self, node: ast.expr, depth: int) -> Expr:
        """The right side, node by node; whatever has no handler is not allowed."""
        if depth > MAX_DEPTH:
            raise self.error(f"expression nested more than {MAX_DEPTH} levels deep; split "
                             "it into several equations", node)
        handler = self._HANDLERS.get(type(node))
        if handler is None:
            what = _REJECTED.get(type(node), f"`{self.source(node)}`")
            raise self.error(f"{what}: not allowed in equations, which take numbers, names, "
                             "x[t], s[t-1], s[t], + - * / @ and calls", node)
        return handler(self, node, depth + 1)

    def binary(self, node: ast.BinOp, depth: int) -> Expr:
        # ast places a BinOp at its left operand; the operator is a better place to point.
        # Between the operands there is only the operator, blanks and parentheses.
        gap = self.code[node.left.end_col_offset : node.right.col_offset]
        symbol = gap.strip(" \t()")
        column = node.left.end_col_offset + gap.find(symbol)
        op = _BINARY.get(type(node.op))
        if op is None:
            advice = _ADVICE.get(symbol, "use + - * / or @")
            raise self.error(f"`{symbol}` is not supported; {advice}", column)
        left = self.convert(node.left, depth)
        return Binary(op, left, self.convert(node.right, depth), loc=self.at(column))

    def unary(self, node: ast.UnaryOp, depth: int) -> Expr:
        if isinstance(node.op, ast.UAdd):
            return self.convert(node.operand, depth)
        if isinstance(node.op, ast.USub):
            return Negate(self.convert(node.operand, depth), loc=self.at(node))
        symbol = "not" if isinstance(node.op, ast.Not) else "~"
        raise self.error(f"`{symbol}` is not supported; use + - * / or @", node)

    def constant(self, node: ast.Constant, depth: int) -> Expr:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(f"`{self.source(node)}` is not a number; constants must be "
                             "numbers such as 1 or 0.5", node)
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise self.error("number too large", node)
        return Number(number, loc=self.at(node))

    def name(self, node: ast.Name, depth: int) -> Expr:
        name, loc = node.id, self.at(node)
        if name in self.params:
            return Param(name, loc=loc)
        if name in self.locals:
            return Local(name, loc=loc)
        if name in self.states:
            raise self.error(f"state {name} needs a step: write {name}[t-1] for the previous "
                             f"step or {name}[t] for this one, once assigned", node)
        if name == "x":
            raise self.error("the input is only available as x[t]", node)
        if name == "t":
            raise self.error("t is the step index; use it only as in x[t] or h[t-1]", node)
        if name in FUNCTIONS:
            raise self.error(f"{name} is a function; call it, as in {name}(...)", node)
        known = [*sorted(self.params), *self.states, *self.locals]
        hint = did_you_mean(name, known) or f"; this cell has {one_of(known)}"
        raise self.error(f"unknown name '{name}'{hint}", node)

    def subscript(self, node: ast.Subscript, depth: int) -> Expr:
        name = node.value.id if isinstance(node.value, ast.Name) else None
        loc = self.at(node)
        if name == "x" and _is_step(node.slice, False):
            return Input(loc=loc)
        if name == "x":
            raise self.error("the input is only available as x[t]", node)
        if name is not None and name not in self.states:
            self.name(node.value, depth)  # raises for unknown and reserved names
        if name not in self.states:
            raise self.error("only x and states can be indexed, as in x[t] or h[t-1]", node)
        if _is_step(node.slice, True):
            return State(name, True, loc=loc)
        if not _is_step(node.slice, False):
            raise self.error(f"state {name} is only available as {name}[t-1] (previous "
                             f"step) or {name}[t] (this step, once assigned)", node)
        if name not in self.assigned:
            raise self.error(f"{name}[t] is used before it is assigned; use {name}[t-1] for "
                             f"the previous step, or assign {name}[t] on an earlier line", node)
        return State(name, False, loc=loc)

    def call(self, node: ast.Call, depth: int) -> Expr:
        function = node.func.id if isinstance(node.func, ast.Name) else ""
        if function not in FUNCTIONS:
            raise self.error(f"`{self.source(node.func)}` cannot be called: {_CALLABLE}"
                             f"{did_you_mean(function, FUNCTIONS)}", node)
        if node.keywords:
            raise self.error("keyword arguments are not supported; pass arguments by "
                             "position", node.keywords[0])
        if function == "concat" and not node.args:
            raise self.error("concat needs at least one argument", node)
        if function != "concat" and len(node.args) != 1:
            raise self.error(f"{function} takes one argument, got {len(node.args)}", node)
        args = tuple(self.convert(arg, depth) for arg in node.args)
        return Call(function, args, loc=self.at(node))

    _HANDLERS: ClassVar[dict] = {ast.BinOp: binary, ast.UnaryOp: unary, ast.Constant: constant,
                                 ast.Name: name, ast.Subscript: subscript, ast.Call: call}
