"""The primitive ops. Each is declared once, completely: its shape rule, its NumPy reference
evaluation, and (a slot for) its VJP rule.

Shapes here are per example: a batched value of shape ``(n,)`` holds ``[batch, n]`` at run
time, a sequence ``(T, n)`` holds ``[batch, T, n]``. Parameters and constants are not
batched. Reference evaluations work on the batched arrays, features on the last axis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Shape = tuple


class ShapeError(Exception):
    """Internal: an op got arguments of shapes it cannot take (a compiler bug if it escapes)."""


@dataclass(frozen=True)
class OpDef:
    name: str
    arity: int | None  # None: any number of arguments (at least one)
    shape: Callable  # (arg_shapes, attrs) -> shape
    evaluate: Callable  # (*arg_arrays, **attrs) -> array
    vjp: Callable | None = None  # filled in by autodiff (BPTT)
    doc: str = ""


REGISTRY: dict[str, OpDef] = {}


def register(name: str, arity, shape, evaluate, doc: str = "") -> None:
    REGISTRY[name] = OpDef(name, arity, shape, evaluate, doc=doc)


def get(name: str) -> OpDef:
    return REGISTRY[name]


# --- shape rules ---------------------------------------------------------------------------

def _same_shape(shapes, attrs) -> Shape:
    """Elementwise: equal shapes, or one side a scalar."""
    result = ()
    for shape in shapes:
        if shape == ():
            continue
        if result and shape != result:
            raise ShapeError(f"elementwise op on shapes {list(shapes)}")
        result = shape
    return result


def _matvec_shape(shapes, attrs) -> Shape:
    (matrix, vector) = shapes
    if len(matrix) != 2 or len(vector) < 1 or matrix[1] != vector[-1]:
        raise ShapeError(f"matvec of {matrix} and {vector}")
    return vector[:-1] + (matrix[0],)


def _concat_shape(shapes, attrs) -> Shape:
    prefixes = {shape[:-1] for shape in shapes}
    if len(prefixes) != 1 or any(len(shape) == 0 for shape in shapes):
        raise ShapeError(f"concat of {list(shapes)}")
    return shapes[0][:-1] + (sum(shape[-1] for shape in shapes),)


def _stack_shape(shapes, attrs) -> Shape:
    if len(set(shapes)) != 1:
        raise ShapeError(f"stack_steps of {list(shapes)}")
    return (len(shapes),) + shapes[0]


# --- reference evaluations -----------------------------------------------------------------

def sigmoid(v):
    # 1/(1+exp(-v)) written through tanh: no overflow for large |v|, same value.
    return 0.5 * (1.0 + np.tanh(0.5 * v))


def softmax(v):
    shifted = np.exp(v - v.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _zeros(ref, *, size):
    return np.zeros((ref.shape[0], size), dtype=ref.dtype)


register("input", 0, lambda s, a: a["shape"], None, "a value fed at run time")
register("param", 0, lambda s, a: a["shape"], None, "a parameter, shared by every step")
register("const", 0, lambda s, a: (), None, "a scalar literal")
register("zeros", 1, lambda s, a: (a["size"],), _zeros,
         "zeros of [batch, size]; the argument only gives the batch size")
register("identity", 1, lambda s, a: s[0], lambda v: v, "the argument unchanged")
register("take_step", 1, lambda s, a: s[0][1:], lambda v, *, index: v[:, index],
         "the step `index` of a sequence")
register("stack_steps", None, _stack_shape, lambda *vs: np.stack(vs, axis=1),
         "per-step values as one sequence, in the order given")
register("repeat_steps", 1, lambda s, a: (a["steps"],) + s[0],
         lambda v, *, steps: np.repeat(v[:, None, :], steps, axis=1),
         "a vector repeated at every step")
register("matvec", 2, _matvec_shape, lambda w, v: v @ w.T, "W @ v for every example")
register("add", 2, _same_shape, np.add)
register("sub", 2, _same_shape, np.subtract)
register("mul", 2, _same_shape, np.multiply, "elementwise product")
register("div", 2, _same_shape, np.divide)
register("neg", 1, _same_shape, np.negative)
register("tanh", 1, _same_shape, np.tanh)
register("sigmoid", 1, _same_shape, sigmoid)
register("relu", 1, _same_shape, lambda v: np.maximum(v, 0))
register("exp", 1, _same_shape, np.exp)
register("log", 1, _same_shape, np.log)
register("softmax", 1, _same_shape, softmax, "softmax over features")
register("concat", None, _concat_shape, lambda *vs: np.concatenate(vs, axis=-1),
         "concatenation over features")

ACTIVATIONS = {"tanh": "tanh", "sigmoid": "sigmoid", "relu": "relu", "softmax": "softmax"}
BINARY = {"+": "add", "-": "sub", "*": "mul", "/": "div", "@": "matvec"}
