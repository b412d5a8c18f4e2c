"""Reductions that the losses are written with: a sum or a mean of every element (over
examples, steps and features, to one number), the count of those elements, and a sum over
the features that keeps their axis (one total per row).

The losses are ops of their own while the graph is built and differentiated; the pass
``decompose_losses`` then writes each one with these (and the arithmetic), so that
backends lower these instead of the losses. Made by that pass, after differentiation: no
VJP.
"""

from __future__ import annotations

import numpy as np

from .registry import ShapeError, register

register("sum_all", 1, lambda s, a: (), np.sum, unbatched=True,
         traits=("zero_if_all", "layout_free"),
         doc="the sum of every element (examples, steps and features): a number")

register("mean_all", 1, lambda s, a: (), np.mean, unbatched=True,
         traits=("zero_if_all", "layout_free"),
         doc="the mean of every element (examples, steps and features): a number")


def size(v):
    """How many elements ``v`` has, in its own dtype (batch and T are run-time sizes)."""
    return np.asarray(v.size, dtype=v.dtype)


register("size", 1, lambda s, a: (), size, unbatched=True, traits=("layout_free",),
         doc="how many elements (examples × steps × features) its argument has at run time")


def _sum_features_shape(shapes, attrs):
    if not shapes[0]:
        raise ShapeError("sum_features of a number")
    return shapes[0][:-1] + (1,)


register("sum_features", 1, _sum_features_shape, lambda v: v.sum(axis=-1, keepdims=True),
         traits=("per_example", "zero_if_all"),
         doc="the sum over the features, keeping their axis (of size 1): a total per row")
