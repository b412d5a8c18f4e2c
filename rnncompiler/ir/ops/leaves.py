"""Values that come from outside the computation: inputs, parameters, constants, zeros."""

from __future__ import annotations

import numpy as np

from .registry import attrs_shape, register

register("input", 0, attrs_shape, None, traits=("distinct",), doc="a value fed at run time")

register("param", 0, attrs_shape, None, traits=("distinct",),
         doc="a parameter, shared by every step")

register("const", 0, lambda s, a: (), None, doc="a scalar literal")


def _zeros(ref, *, size):
    return np.zeros((ref.shape[0], size), dtype=ref.dtype)


register("zeros", 1, lambda s, a: (a["size"],), _zeros, lambda b, g, y, args, attrs: [None],
         traits=("distinct", "zero_source", "shape_only"),
         doc="zeros of [batch, size]; the argument only gives the batch size")

register("zeros_shaped", 0, attrs_shape, lambda *, shape, dtype: np.zeros(shape, dtype),
         unbatched=True, traits=("distinct", "zero_source"),
         doc="zeros of a fixed shape (a gradient accumulator's start)")  # in gradients only
