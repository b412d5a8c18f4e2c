"""Symbolic shapes of cell equations.

A size is a whole multiple of the symbols ``units`` and ``input`` plus a constant, so a
cell is checked once for every size before any size is known (``W_hh @ x[t]`` fails even
when a layer happens to have units == input); the same check runs on concrete sizes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import EquationError, did_you_mean
from .equations import (
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
    render,
)

Shape = tuple  # of Dim: () a scalar, (n,) a vector, (m, n) a matrix

SYMBOLS = ("units", "input")


@dataclass(frozen=True)
class Dim:
    """A size: whole multiples of the SYMBOLS plus a constant, such as ``units + input``."""

    coefficients: tuple[int, ...]  # one per name in SYMBOLS
    constant: int = 0

    @classmethod
    def of(cls, value: int | str) -> Dim:
        """``Dim.of("units")``, ``Dim.of("input")`` or ``Dim.of(3)``."""
        if isinstance(value, int) and not isinstance(value, bool):
            return cls((0,) * len(SYMBOLS), value)
        if value in SYMBOLS:
            return cls(tuple(int(symbol == value) for symbol in SYMBOLS))
        raise ValueError(f"a dimension is an int, 'units' or 'input', not {value!r}")

    def __add__(self, other: Dim | int) -> Dim:
        if isinstance(other, int) and not isinstance(other, bool):
            other = Dim.of(other)
        if not isinstance(other, Dim):
            return NotImplemented
        pairs = zip(self.coefficients, other.coefficients)
        return Dim(tuple(a + b for a, b in pairs), self.constant + other.constant)

    __radd__ = __add__  # so that sum() of dims works

    def substitute(self, sizes: Mapping[str, int]) -> Dim:
        """The same size with the symbols in ``sizes`` replaced by their values."""
        constant = self.constant + sum(
            c * sizes[s] for s, c in zip(SYMBOLS, self.coefficients) if s in sizes)
        kept = tuple(0 if s in sizes else c for s, c in zip(SYMBOLS, self.coefficients))
        return Dim(kept, constant)

    @property
    def value(self) -> int:
        """The size as an int; ValueError while a symbol is left."""
        if any(self.coefficients):
            raise ValueError(f"size {self} is symbolic; substitute sizes first")
        return self.constant

    def __str__(self) -> str:
        terms = [s if c == 1 else f"{c}*{s}" for s, c in zip(SYMBOLS, self.coefficients) if c]
        if self.constant or not terms:
            terms.append(str(self.constant))
        return " + ".join(terms).replace("+ -", "- ")


Shape = tuple  # of Dim: () a scalar, (n,) a vector, (m, n) a matrix
_VERBS = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide"}


def infer_shapes(
    equations: Sequence[Equation], *, param_shapes: Mapping[str, Shape],
    state_shape: Shape, input_shape: Shape,
) -> dict[str, Shape]:
    """The shape of every equation's target, locals and states alike, by name.

    Raises:
        EquationError: at the sub-expression whose shapes do not agree.
    """
    checker = _ShapeChecker(param_shapes, tuple(state_shape), tuple(input_shape))
    for equation in equations:
        shape = checker.shape(equation.expr)
        if equation.is_state and shape != checker.state_shape:
            raise EquationError(f"{equation.target}[t] must be {_show(checker.state_shape)}, "
                                f"but {_brief(equation.expr)} is {_show(shape)}", equation.loc)
        checker.locals[equation.target] = shape
    return checker.locals


def _show(shape: Shape) -> str:
    return f"[{', '.join(map(str, shape))}]" if shape else "a scalar"


def _brief(expr: Expr) -> str:
    text = render(expr)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass
class _ShapeChecker:
    param_shapes: Mapping[str, Shape]
    state_shape: Shape
    input_shape: Shape
    locals: dict[str, Shape] = field(default_factory=dict)

    def shape(self, expr: Expr, *, matrix_allowed: bool = False) -> Shape:
        shape = self._shape(expr)
        if len(shape) > 1 and not matrix_allowed:
            raise EquationError(f"{_brief(expr)} is a matrix {_show(shape)}; a matrix can only "
                                f"be the left side of @, as in {_brief(expr)} @ x[t]", expr.loc)
        return shape

    def _shape(self, expr: Expr) -> Shape:
        if isinstance(expr, Binary) and expr.op == "@":
            return self._matvec(expr)
        if isinstance(expr, Binary):
            left, right = self.shape(expr.left), self.shape(expr.right)
            if left != right and left and right:  # a scalar goes with any shape
                raise EquationError(f"cannot {_VERBS[expr.op]} {_show(left)} and "
                                    f"{_show(right)} (in {_brief(expr)})", expr.loc)
            return left or right
        if isinstance(expr, Call):
            return self._call(expr)
        if isinstance(expr, Negate):
            return self.shape(expr.operand)
        if isinstance(expr, (Param, Local)):
            known = self.param_shapes if isinstance(expr, Param) else self.locals
            if expr.name not in known:
                raise EquationError(f"no shape for '{expr.name}'"
                                    f"{did_you_mean(expr.name, known)}", expr.loc)
            return tuple(known[expr.name])
        shapes = {Number: (), Input: self.input_shape, State: self.state_shape}
        return shapes[type(expr)]

    def _call(self, expr: Call) -> Shape:
        shapes = [self.shape(arg) for arg in expr.args]
        if expr.function == "concat":
            for arg, shape in zip(expr.args, shapes):
                if len(shape) != 1:
                    raise EquationError(f"concat needs vectors, but {_brief(arg)} is "
                                        f"{_show(shape)}", arg.loc)
            return (sum(shape[0] for shape in shapes),)
        if expr.function == "softmax" and len(shapes[0]) != 1:
            raise EquationError(f"softmax needs a vector, but {_brief(expr.args[0])} is "
                                f"{_show(shapes[0])}", expr.loc)
        return shapes[0]

    def _matvec(self, expr: Binary) -> Shape:
        matrix, vector = self.shape(expr.left, matrix_allowed=True), self.shape(expr.right)
        if len(matrix) != 2:
            raise EquationError(f"the left side of @ must be a matrix, but {_brief(expr.left)} "
                                f"is {_show(matrix)}", expr.loc)
        if vector != matrix[1:]:
            raise EquationError(f"{_brief(expr)}: {_brief(expr.left)} is {_show(matrix)} but "
                                f"{_brief(expr.right)} is {_show(vector)}", expr.loc)
        return matrix[:1]
