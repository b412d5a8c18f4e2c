"""Matrix products and the sums over examples their gradients take: W @ v, Wᵀ @ g,
Σ g vᵀ, and the matrices passes stack or transpose for fewer, larger products."""

from __future__ import annotations

import numpy as np

from .registry import ShapeError, register


def _matvec_shape(shapes, attrs):
    (matrix, vector) = shapes
    if len(matrix) != 2 or len(vector) < 1 or matrix[1] != vector[-1]:
        raise ShapeError(f"matvec of {matrix} and {vector}")
    return vector[:-1] + (matrix[0],)


def _matvec_vjp(b, g, y, args, attrs):
    # y = W v: dW = Σ_batch g vᵀ, dv = Wᵀ g
    weight, vector = args
    return [b.add("outer_sum", [g, vector]) if b.needs[0] else None,
            b.add("matvec_t", [weight, g]) if b.needs[1] else None]


register("matvec", 2, _matvec_shape, lambda w, v: v @ w.T, _matvec_vjp, symbol="@",
         traits=("zero_if_any", "product", "per_example"), doc="W @ v, per example")


# --- used only in gradients ---------------------------------------------------------------

def _matvec_t_shape(shapes, attrs):
    (matrix, vector) = shapes
    if len(matrix) != 2 or len(vector) < 1 or matrix[0] != vector[-1]:
        raise ShapeError(f"matvec_t of {matrix} and {vector}")
    return vector[:-1] + (matrix[1],)


register("matvec_t", 2, _matvec_t_shape, lambda w, g: g @ w,
         traits=("zero_if_any", "product", "per_example"), doc="Wᵀ @ g, per example")


def _outer_sum_shape(shapes, attrs):
    (left, right) = shapes
    if left[:-1] != right[:-1]:
        raise ShapeError(f"outer_sum of {left} and {right}")
    return (left[-1], right[-1])


def outer_sum(g, v):
    """Σ over every leading axis (examples, steps) of g vᵀ."""
    return g.reshape(-1, g.shape[-1]).T @ v.reshape(-1, v.shape[-1])


register("outer_sum", 2, _outer_sum_shape, outer_sum, unbatched=True,
         traits=("zero_if_any", "layout_free", "sums_examples"),
         doc="Σ over examples (and steps) of g vᵀ")


def _sum_batch(g, *, shape):
    return g.sum(axis=tuple(range(g.ndim - len(shape))))


register("sum_batch", 1, lambda s, a: a["shape"], _sum_batch, unbatched=True,
         traits=("zero_if_all", "layout_free", "sums_examples"),
         doc="sum over the batch (and steps) down to `shape`")


# --- made by optimisation passes (after differentiation: no VJP) ---------------------------

register("stack_rows", None, lambda s, a: (sum(x[0] for x in s), s[0][1]),
         lambda *ws: np.concatenate(ws, axis=0), unbatched=True,
         doc="matrices stacked row-wise: several products with one operand become one")

register("transpose", 1, lambda s, a: s[0][::-1], lambda w: np.ascontiguousarray(w.T),
         unbatched=True, doc="a matrix transposed (made once, laid out for the products)")
