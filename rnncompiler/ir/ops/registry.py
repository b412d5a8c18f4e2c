"""The registry of ops and what is declared of each: shape rule, reference evaluation, VJP
rule, traits (the package's docstring says what each means)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Shape = tuple

TRAITS = {
    "elementwise": "each output element from the same element of each argument",
    "commutative": "the arguments may be swapped",
    "distinct": "each node its own value whatever its attributes (never merged)",
    "zero_source": "always zero",
    "shape_only": "its value depends on its arguments' shapes, not their values: no "
                  "parameter moves it",
    "zero_if_any": "zero where any argument is zero",
    "zero_if_all": "zero where every argument is zero",
    "product": "a matrix product with a parameter-like operand (hoistable over steps)",
    "per_example": "each example's step computed alone, with operands the same for every "
                   "example: the same op computes batch-major and time-major values",
    "layout_free": "a sum, mean or count over every example and step: any layout gives "
                   "the same",
    "sums_examples": "a sum over examples that a loop may take once over all steps",
    "function": "a function of the equation language, of the same name",
    "activation": "a dense layer's activation, of the same name",
}


class ShapeError(Exception):
    """Internal: an op got arguments of shapes it cannot take (a compiler bug if it escapes)."""


@dataclass(frozen=True)
class OpDef:
    name: str
    arity: int | None  # None: any number of arguments (at least one)
    shape: Callable  # (arg_shapes, attrs) -> shape
    evaluate: Callable | None  # (*arg_arrays, **attrs) -> array; None for leaves
    vjp: Callable | None = None  # None: a leaf, or an op used only in gradients
    unbatched: bool = False  # the result has no batch axis (a reduction over the batch)
    doc: str = ""
    traits: frozenset = frozenset()
    symbol: str | None = None  # the operator of the equation language (+ - * / @)


REGISTRY: dict[str, OpDef] = {}


def register(name: str, arity, shape, evaluate, vjp=None, *, unbatched=False, doc="",
             traits=(), symbol=None) -> None:
    unknown = set(traits) - set(TRAITS)
    if unknown:
        raise ValueError(f"op {name}: unknown traits {sorted(unknown)}")
    REGISTRY[name] = OpDef(name, arity, shape, evaluate, vjp, unbatched, doc,
                           frozenset(traits), symbol)


def get(name: str) -> OpDef:
    return REGISTRY[name]


def having(trait: str) -> frozenset:
    """The names of the ops with ``trait``."""
    if trait not in TRAITS:
        raise ValueError(f"unknown trait {trait!r}")
    return frozenset(name for name, op in REGISTRY.items() if trait in op.traits)


def same_shape(shapes, attrs) -> Shape:
    """Elementwise, NumPy's broadcasting: equal shapes, or one side's shape the end of the
    other's (a scalar, a vector added at every step of a sequence), or sizes of 1 (a
    mask of [T, 1] on a sequence of [T, n])."""
    rank = max(len(shape) for shape in shapes)
    result = []
    for sizes in zip(*[(1,) * (rank - len(shape)) + tuple(shape) for shape in shapes]):
        wide = {size for size in sizes if size != 1}
        if len(wide) > 1:
            raise ShapeError(f"elementwise op on shapes {list(shapes)}")
        result.append(wide.pop() if wide else 1)
    return tuple(result)


def first_shape(shapes, attrs) -> Shape:
    return shapes[0]


def attrs_shape(shapes, attrs) -> Shape:
    return attrs["shape"]
