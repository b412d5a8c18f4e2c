"""How each op of the graph becomes ONNX nodes (opset 17, standard domain only).

Values are batch-first: a vector [batch, n], a sequence [batch, T, n]; parameters have no
batch axis. ``steps`` attributes are either fixed or, in a ``scan`` model, the run-time
length T (``ctx.steps_tensor``): then the lowerings compute with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import TensorProto, numpy_helper

from .builder import OnnxBuilder


@dataclass
class Context:
    arg_shapes: tuple = ()  # per-example shapes of the arguments
    arg_batched: tuple = ()
    step_index: str | None = None  # inside a Scan body: the scalar int64 step
    steps_tensor: str | None = None  # a scan model: T at run time, int64 [1]
    transposed: object = None  # parameter name -> its transpose, made once (or None)

    def steps(self, b: OnnxBuilder, steps: int, dynamic: bool) -> str:
        """A length as an int64 [1] tensor: T at run time where the length follows T."""
        if self.steps_tensor is not None and dynamic:
            return self.steps_tensor
        return b.ints([steps])


def _binary(op_type):
    return lambda b, x, attrs, ctx: b.op(op_type, x)


def _unary(op_type):
    return lambda b, x, attrs, ctx: b.op(op_type, x)


def _zeros(b, x, attrs, ctx):
    batch = b.op("Slice", [b.op("Shape", [x[0]]), b.ints([0]), b.ints([1])])
    shape = b.op("Concat", [batch, b.ints([attrs["size"]])], axis=0)
    return b.op("ConstantOfShape", [shape], value=_zero(b))


def _zero(b):
    return numpy_helper.from_array(np.zeros(1, b.np_dtype))


def _zeros_shaped(b, x, attrs, ctx):
    return b.constant(np.zeros(attrs["shape"]))


def _take_step(b, x, attrs, ctx):
    index = ctx.step_index if ctx.step_index is not None else b.ints(attrs["index"])
    return b.op("Gather", [x[0], index], axis=1)


def _stack(b, x, attrs, ctx):
    axis = b.ints([1])
    return b.op("Concat", [b.op("Unsqueeze", [v, axis]) for v in x], axis=1)


def _repeat(b, x, attrs, ctx):
    expanded = b.op("Unsqueeze", [x[0], b.ints([1])])
    repeats = b.op("Concat", [b.ints([1]), b.ints([attrs["steps"]]), b.ints([1])], axis=0)
    return b.op("Tile", [expanded, repeats])


def _matvec(b, x, attrs, ctx):
    weight, vector = x
    transposed = ctx.transposed(weight) if ctx.transposed else None
    return b.op("MatMul", [vector, transposed or b.op("Transpose", [weight], perm=[1, 0])])


def _matvec_t(b, x, attrs, ctx):
    weight, grad = x
    return b.op("MatMul", [grad, weight])


def _outer_sum(b, x, attrs, ctx):
    # Σ over examples (and steps) of g vᵀ: both as rows, then one product
    rows = [b.op("Reshape", [v, b.ints([-1, shape[-1]])])
            for v, shape in zip(x, ctx.arg_shapes)]
    return b.op("MatMul", [b.op("Transpose", [rows[0]], perm=[1, 0]), rows[1]])


def _sum_batch(b, x, attrs, ctx):
    rank = len(ctx.arg_shapes[0]) + 1
    leading = list(range(rank - len(attrs["shape"])))
    return b.op("ReduceSum", [x[0], b.ints(leading)], keepdims=0)


def _slice(b, x, attrs, ctx):
    return b.op("Slice", [x[0], b.ints([attrs["start"]]), b.ints([attrs["stop"]]),
                          b.ints([-1])])


def _scatter_step(b, x, attrs, ctx):
    """Zeros of [batch, steps, n] but ``x`` at step ``index``: a Pad of one step."""
    steps = ctx.steps(b, attrs["steps"], attrs["dynamic"])
    one = b.ints([1])
    if attrs["index"] == attrs["steps"] - 1:
        before, after = b.op("Sub", [steps, one]), b.ints([0])
    else:
        before = b.ints([attrs["index"]])
        after = b.op("Sub", [steps, b.ints([attrs["index"] + 1])])
    zero = b.ints([0])
    pads = b.op("Concat", [zero, before, zero, zero, after, zero], axis=0)
    return b.op("Pad", [b.op("Unsqueeze", [x[0], one]), pads])


def _cut_chunk(b, x, attrs, ctx):
    if ctx.step_index is None:  # unrolled: the step is known
        boundary = attrs["index"] + attrs["shift"]
        cut = 0 < boundary < attrs["steps"] and boundary % attrs["chunk"] == 0
        return b.op("Mul", [x[0], b.constant(0.0)]) if cut else b.op("Identity", x)
    boundary = b.op("Add", [ctx.step_index, b.ints(attrs["shift"])])
    steps = b.op("Squeeze", [ctx.steps(b, attrs["steps"], attrs["dynamic"])])
    inside = b.op("And", [b.op("Greater", [boundary, b.ints(0)]),
                          b.op("Less", [boundary, steps])])
    on_edge = b.op("Equal", [b.op("Mod", [boundary, b.ints(attrs["chunk"])]), b.ints(0)])
    keep = b.op("Not", [b.op("And", [inside, on_edge])])
    return b.op("Mul", [x[0], b.op("Cast", [keep], to=b.onnx_dtype)])


def _sequence_mask(b, x, attrs, ctx):
    # [batch, T, 1]: t < length
    lengths, sequence = x
    steps = b.op("Gather", [b.op("Shape", [sequence]), b.ints(1)])
    positions = b.op("Range", [b.ints(0), steps, b.ints(1)])
    below = b.op("Less", [b.op("Unsqueeze", [positions, b.ints([0])]),
                          b.op("Unsqueeze", [lengths, b.ints([1])])])
    return b.op("Unsqueeze", [b.op("Cast", [below], to=b.onnx_dtype), b.ints([2])])


def _relu_grad(b, x, attrs, ctx):
    g, y = x
    positive = b.op("Cast", [b.op("Greater", [y, b.constant(0.0)])], to=b.onnx_dtype)
    return b.op("Mul", [g, positive])


def _softmax_grad(b, x, attrs, ctx):
    g, y = x
    inner = b.op("ReduceSum", [b.op("Mul", [g, y]), b.ints([-1])], keepdims=1)
    return b.op("Mul", [y, b.op("Sub", [g, inner])])


def _shift_steps(b, x, attrs, ctx):
    return shift_steps_along(b, *x, attrs["backward"], axis=1)


def shift_steps_along(b, sequence, first, backward: bool, axis: int) -> str:
    """[first, seq[0], ..., seq[T-2]] along the steps' ``axis`` (backward: [seq[1], ...,
    seq[T-1], first])."""
    first = b.op("Unsqueeze", [first, b.ints([axis])])
    if backward:
        rest = b.op("Slice", [sequence, b.ints([1]), b.ints([2**62]), b.ints([axis])])
        return b.op("Concat", [rest, first], axis=axis)
    rest = b.op("Slice", [sequence, b.ints([0]), b.ints([-1]), b.ints([axis])])
    return b.op("Concat", [first, rest], axis=axis)


def _embed_grad(b, x, attrs, ctx):
    """Σ of each lookup's cotangent into its row: ScatterND adding into zeros."""
    g, ids = x
    table = b.constant(np.zeros((attrs["classes"], ctx.arg_shapes[0][-1])))
    rows = b.op("Unsqueeze", [ids, b.ints([-1])])
    summed = b.op("ScatterND", [table, rows, g], reduction="add")
    if "padding_id" not in attrs:
        return summed
    kept = np.ones((attrs["classes"], 1))
    kept[attrs["padding_id"]] = 0  # the padding id's row gets no gradient
    return b.op("Mul", [summed, b.constant(kept)])


def _one_hot(b, x, attrs, ctx):
    """ids == [0, 1, ..., classes - 1], as numbers (onnxruntime's OneHot has no kernel for
    every float type)."""
    same = b.op("Equal", [b.op("Unsqueeze", [x[0], b.ints([-1])]),
                          b.ints(list(range(attrs["classes"])))])
    return b.op("Cast", [same], to=b.onnx_dtype)


LOWERINGS = {
    "zeros": _zeros,
    "zeros_shaped": _zeros_shaped,
    "identity": _unary("Identity"),
    "take_step": _take_step,
    "stack_steps": _stack,
    "repeat_steps": _repeat,
    "matvec": _matvec,
    "add": _binary("Add"),
    "sub": _binary("Sub"),
    "mul": _binary("Mul"),
    "div": _binary("Div"),
    "neg": _unary("Neg"),
    "tanh": _unary("Tanh"),
    "sigmoid": _unary("Sigmoid"),
    "relu": _unary("Relu"),
    "exp": _unary("Exp"),
    "log": _unary("Log"),
    "softmax": lambda b, x, attrs, ctx: b.op("Softmax", x, axis=-1),
    "concat": lambda b, x, attrs, ctx: b.op("Concat", x, axis=-1),
    "sequence_mask": _sequence_mask,
    "matvec_t": _matvec_t,
    "outer_sum": _outer_sum,
    "sum_batch": _sum_batch,
    "slice_features": _slice,
    "scatter_step": _scatter_step,
    "sum_steps": lambda b, x, attrs, ctx: b.op("ReduceSum", [x[0], b.ints([1])], keepdims=0),
    "relu_grad": _relu_grad,
    "softmax_grad": _softmax_grad,
    "cut_chunk": _cut_chunk,
    "stack_rows": lambda b, x, attrs, ctx: b.op("Concat", x, axis=0),
    "transpose": lambda b, x, attrs, ctx: b.op("Transpose", x, perm=[1, 0]),
    "shift_steps": _shift_steps,
    # the losses' primitive ops (decompose_losses)
    "sum_all": lambda b, x, attrs, ctx: b.op("ReduceSum", x, keepdims=0),
    "mean_all": lambda b, x, attrs, ctx: b.op("ReduceMean", x, keepdims=0),
    "size": lambda b, x, attrs, ctx: b.op("Cast", [b.op("Size", x)], to=b.onnx_dtype),
    "sum_features": lambda b, x, attrs, ctx: b.op("ReduceSum", [x[0], b.ints([-1])],
                                                  keepdims=1),
    "log_softmax": lambda b, x, attrs, ctx: b.op("LogSoftmax", x, axis=-1),
    # class ids
    "embed": lambda b, x, attrs, ctx: b.op("Gather", x, axis=0),
    "embed_grad": _embed_grad,
    "one_hot": _one_hot,
}

LEAVES = ("input", "param", "const")
INT64 = TensorProto.INT64
