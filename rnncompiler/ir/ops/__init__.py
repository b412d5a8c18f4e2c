"""The primitive ops: each declared once, in one block, with its shape rule, its NumPy
reference evaluation, its VJP rule and its traits (what passes and backends may assume of
it). Every table of ops that a pass or a backend needs is derived from here (``having``).

Shapes are per example: a batched value of shape ``(n,)`` holds ``[batch, n]`` at run
time, a sequence ``(T, n)`` holds ``[batch, T, n]``. Parameters and constants are not
batched. Reference evaluations work on the batched arrays, features on the last axis.

A VJP rule ``(b, g, y, args, attrs)`` gets a builder ``b``, the output cotangent ``g``,
the forward output ``y`` and the inputs (all graph nodes) and returns one node per input,
or None where ``b.needs[i]`` is false. It builds nodes; it never computes numbers. Ops
used only in gradients have no VJP: differentiating through them is an error.

The modules, by what their ops do: ``leaves`` (inputs, parameters, constants, zeros),
``steps`` (the time axis), ``elementwise`` (and the feature axis), ``products`` (matrix
products and sums over examples), ``reductions`` (sums, means and counts of every
element, totals over the features), ``classes`` (class ids: embeddings, one-hot),
``losses`` (which the pass ``decompose_losses``
writes with the ops of the other modules before a backend sees them).
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

from . import (  # importing them registers
    classes,
    elementwise,
    leaves,
    losses,
    products,
    reductions,
    steps,
)
from .elementwise import log_softmax, sigmoid, softmax
from .losses import cross_entropy, cross_entropy_grad
from .registry import (
    REGISTRY,
    TRAITS,
    OpDef,
    Shape,
    ShapeError,
    first_shape,
    get,
    having,
    register,
)
from .steps import sequence_mask

MODULES = (leaves, steps, products, elementwise, reductions, classes, losses)


def reference_function(name: str) -> Callable:
    """A function of the reference evaluations, by name (the NumPy backend copies those its
    module calls, so that the module needs nothing but numpy)."""
    for module in MODULES:
        if callable(getattr(module, name, None)):
            return getattr(module, name)
    raise KeyError(f"no reference function {name!r}")


BINARY = {op.symbol: name for name, op in REGISTRY.items() if op.symbol}  # + - * / @

# every op's name as an attribute, ``OP.matvec == "matvec"``: code outside the registry
# names an op through it, so that a misspelt or removed op fails where it is named
OP = SimpleNamespace(**{name: name for name in REGISTRY})

__all__ = [
    "BINARY",
    "OP",
    "REGISTRY",
    "TRAITS",
    "OpDef",
    "Shape",
    "ShapeError",
    "cross_entropy",
    "cross_entropy_grad",
    "first_shape",
    "get",
    "having",
    "log_softmax",
    "reference_function",
    "register",
    "sequence_mask",
    "sigmoid",
    "softmax",
]
