"""The primitive ops. Each is declared once, completely: its shape rule, its NumPy reference
evaluation, and its VJP rule.

Shapes here are per example: a batched value of shape ``(n,)`` holds ``[batch, n]`` at run
time, a sequence ``(T, n)`` holds ``[batch, T, n]``. Parameters and constants are not
batched. Reference evaluations work on the batched arrays, features on the last axis.

A VJP rule ``_<op>_vjp(b, g, y, args, attrs)`` gets a builder ``b``, the output cotangent
``g``, the forward output ``y`` and the inputs (all graph nodes) and returns one node per
input, or None where ``b.needs[i]`` is false. It builds nodes; it never computes numbers.
Ops used only in gradients have no VJP: differentiating through them is an error.
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
    evaluate: Callable | None  # (*arg_arrays, **attrs) -> array; None for leaves
    vjp: Callable | None = None  # None: a leaf, or an op used only in gradients
    unbatched: bool = False  # the result has no batch axis (a reduction over the batch)
    doc: str = ""


REGISTRY: dict[str, OpDef] = {}


def register(name: str, arity, shape, evaluate, vjp=None, *, unbatched=False, doc="") -> None:
    REGISTRY[name] = OpDef(name, arity, shape, evaluate, vjp, unbatched, doc)


def get(name: str) -> OpDef:
    return REGISTRY[name]


# --- shape rules ---------------------------------------------------------------------------

def _same_shape(shapes, attrs) -> Shape:
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


def _first(shapes, attrs) -> Shape:
    return shapes[0]


def _matvec_shape(shapes, attrs) -> Shape:
    (matrix, vector) = shapes
    if len(matrix) != 2 or len(vector) < 1 or matrix[1] != vector[-1]:
        raise ShapeError(f"matvec of {matrix} and {vector}")
    return vector[:-1] + (matrix[0],)


def _matvec_t_shape(shapes, attrs) -> Shape:
    (matrix, vector) = shapes
    if len(matrix) != 2 or len(vector) < 1 or matrix[0] != vector[-1]:
        raise ShapeError(f"matvec_t of {matrix} and {vector}")
    return vector[:-1] + (matrix[1],)


def _outer_sum_shape(shapes, attrs) -> Shape:
    (left, right) = shapes
    if left[:-1] != right[:-1]:
        raise ShapeError(f"outer_sum of {left} and {right}")
    return (left[-1], right[-1])


def _concat_shape(shapes, attrs) -> Shape:
    prefixes = {shape[:-1] for shape in shapes}
    if len(prefixes) != 1 or any(len(shape) == 0 for shape in shapes):
        raise ShapeError(f"concat of {list(shapes)}")
    return shapes[0][:-1] + (sum(shape[-1] for shape in shapes),)


def _stack_shape(shapes, attrs) -> Shape:
    if len(set(shapes)) != 1:
        raise ShapeError(f"stack_steps of {list(shapes)}")
    return (len(shapes),) + shapes[0]


def _loss_shape(shapes, attrs) -> Shape:
    if shapes[0] != shapes[1]:
        raise ShapeError(f"loss of {shapes[0]} against {shapes[1]}")
    return ()


# --- reference evaluations -----------------------------------------------------------------

def sigmoid(v):
    # 1/(1+exp(-v)) written through tanh: no overflow for large |v|, same value;
    # 0.5 * (1 + tanh(0.5 v)), computed in one buffer
    out = np.multiply(v, 0.5)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


def softmax(v):
    shifted = np.exp(v - v.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def log_softmax(v):
    shifted = v - v.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _zeros(ref, *, size):
    return np.zeros((ref.shape[0], size), dtype=ref.dtype)


def outer_sum(g, v):
    """Σ over every leading axis (examples, steps) of g vᵀ."""
    return g.reshape(-1, g.shape[-1]).T @ v.reshape(-1, v.shape[-1])


def _sum_batch(g, *, shape):
    return g.sum(axis=tuple(range(g.ndim - len(shape))))


def scatter_step(g, *, index, steps):
    out = np.zeros((g.shape[0], steps) + g.shape[1:], dtype=g.dtype)
    out[:, index] = g
    return out


def cut_chunk(g, *, index, chunk, shift, steps):
    boundary = index + shift  # the gradient crosses between boundary-1 and boundary
    return g * 0 if 0 < boundary < steps and boundary % chunk == 0 else g


def shift_steps(seq, first, *, backward=False):
    """[first, seq[0], ..., seq[T-2]] (or, running backward, [seq[1], ..., seq[T-1], first])."""
    first = first[:, None]
    if backward:
        return np.concatenate([seq[:, 1:], first], axis=1)
    return np.concatenate([first, seq[:, :-1]], axis=1)


def sequence_mask(lengths, sequence):
    """[batch, T, 1]: 1 at the steps an example has (t < its length), else 0."""
    steps = np.arange(sequence.shape[1])
    return (steps[None, :] < lengths[:, None])[:, :, None].astype(sequence.dtype)


def masked_mse(pred, target, mask):
    # the mean over the steps that count (mask 1), of every example and feature
    counted = mask.sum() * pred.shape[-1]
    return (mask * (pred - target) ** 2).sum() / counted


def masked_mse_grad(g, pred, target, mask):
    counted = mask.sum() * pred.shape[-1]
    return g * 2 * mask * (pred - target) / counted


def masked_cross_entropy(logits, target, mask):
    per_row = -(target * log_softmax(logits)).sum(axis=-1, keepdims=True)
    return (mask * per_row).sum() / mask.sum()


def masked_cross_entropy_grad(g, logits, target, mask):
    return g * mask * (softmax(logits) * target.sum(axis=-1, keepdims=True) - target) \
        / mask.sum()


def mse(pred, target):
    return np.mean((pred - target) ** 2)


def mse_grad(g, pred, target):
    # d mean((p - t)²) = 2 (p - t) / N
    return g * 2 * (pred - target) / pred.size


def cross_entropy(logits, target):
    per_row = -(target * log_softmax(logits)).sum(axis=-1)
    return per_row.mean()


def cross_entropy_grad(g, logits, target):
    # d mean(-Σ t log softmax(z)) = (softmax(z) - t) / rows, for t summing to one
    rows = logits.size // logits.shape[-1]
    return g * (softmax(logits) * target.sum(axis=-1, keepdims=True) - target) / rows


def softmax_grad(g, y):
    return y * (g - (g * y).sum(axis=-1, keepdims=True))


# --- VJP rules -----------------------------------------------------------------------------
# Each returns one node (or None) per input; `b.needs[i]` says which inputs want one.

def _identity_vjp(b, g, y, args, attrs):
    return [g]


def _add_vjp(b, g, y, args, attrs):
    return [b.unbroadcast(g, arg) if need else None for arg, need in zip(args, b.needs)]


def _sub_vjp(b, g, y, args, attrs):
    left, right = args
    return [b.unbroadcast(g, left) if b.needs[0] else None,
            b.unbroadcast(b.add("neg", [g]), right) if b.needs[1] else None]


def _mul_vjp(b, g, y, args, attrs):
    # d (u * v) = g * v, g * u
    left, right = args
    return [b.unbroadcast(b.add("mul", [g, right]), left) if b.needs[0] else None,
            b.unbroadcast(b.add("mul", [g, left]), right) if b.needs[1] else None]


def _div_vjp(b, g, y, args, attrs):
    # d (u / v) = g / v, -g * y / v
    left, right = args
    return [b.unbroadcast(b.add("div", [g, right]), left) if b.needs[0] else None,
            b.unbroadcast(b.add("neg", [b.add("div", [b.add("mul", [g, y]), right])]), right)
            if b.needs[1] else None]


def _neg_vjp(b, g, y, args, attrs):
    return [b.add("neg", [g])]


def _tanh_vjp(b, g, y, args, attrs):
    # d tanh = g * (1 - y²)
    return [b.add("mul", [g, b.add("sub", [b.const(1.0), b.add("mul", [y, y])])])]


def _sigmoid_vjp(b, g, y, args, attrs):
    # d sigmoid = g * y * (1 - y)
    return [b.add("mul", [b.add("mul", [g, y]), b.add("sub", [b.const(1.0), y])])]


def _relu_vjp(b, g, y, args, attrs):
    return [b.add("relu_grad", [g, y])]  # g where y > 0


def _exp_vjp(b, g, y, args, attrs):
    return [b.add("mul", [g, y])]  # d exp = g * y


def _log_vjp(b, g, y, args, attrs):
    return [b.add("div", [g, args[0]])]  # d log = g / x


def _softmax_vjp(b, g, y, args, attrs):
    return [b.add("softmax_grad", [g, y])]  # y * (g - Σ g y)


def _concat_vjp(b, g, y, args, attrs):
    grads, start = [], 0
    for arg, need in zip(args, b.needs):
        stop = start + b.shape(arg)[-1]
        grads.append(b.add("slice_features", [g], start=start, stop=stop) if need else None)
        start = stop
    return grads


def _matvec_vjp(b, g, y, args, attrs):
    # y = W v: dW = Σ_batch g vᵀ, dv = Wᵀ g
    weight, vector = args
    return [b.add("outer_sum", [g, vector]) if b.needs[0] else None,
            b.add("matvec_t", [weight, g]) if b.needs[1] else None]


def _take_step_vjp(b, g, y, args, attrs):
    return [b.add("scatter_step", [g], index=attrs["index"], steps=b.shape(args[0])[0],
                  dynamic=False)]


def _stack_steps_vjp(b, g, y, args, attrs):
    return [b.add("take_step", [g], index=t) if need else None
            for t, need in enumerate(b.needs)]


def _repeat_steps_vjp(b, g, y, args, attrs):
    return [b.add("sum_steps", [g])]


def _masked_mse_vjp(b, g, y, args, attrs):
    return [b.add("masked_mse_grad", [g, *args]), None, None]


def _masked_cross_entropy_vjp(b, g, y, args, attrs):
    return [b.add("masked_cross_entropy_grad", [g, *args]), None, None]


def _mse_vjp(b, g, y, args, attrs):
    return [b.add("mse_grad", [g, *args]), None]


def _cross_entropy_vjp(b, g, y, args, attrs):
    return [b.add("cross_entropy_grad", [g, *args]), None]


def _leaf_shape(shapes, attrs) -> Shape:
    return attrs["shape"]


# --- the registry --------------------------------------------------------------------------

register("input", 0, _leaf_shape, None, doc="a value fed at run time")
register("param", 0, _leaf_shape, None, doc="a parameter, shared by every step")
register("const", 0, lambda s, a: (), None, doc="a scalar literal")
register("zeros", 1, lambda s, a: (a["size"],), _zeros, lambda b, g, y, args, attrs: [None],
         doc="zeros of [batch, size]; the argument only gives the batch size")
register("identity", 1, _first, lambda v: v, _identity_vjp)
register("take_step", 1, lambda s, a: s[0][1:], lambda v, *, index: v[:, index],
         _take_step_vjp, doc="the step `index` of a sequence")
register("stack_steps", None, _stack_shape, lambda *vs: np.stack(vs, axis=1), _stack_steps_vjp,
         doc="per-step values as one sequence, in the order given")
register("repeat_steps", 1, lambda s, a: (a["steps"],) + s[0],
         lambda v, *, steps: np.repeat(v[:, None, :], steps, axis=1), _repeat_steps_vjp,
         doc="a vector repeated at every step")
register("matvec", 2, _matvec_shape, lambda w, v: v @ w.T, _matvec_vjp, doc="W @ v, per example")
register("add", 2, _same_shape, np.add, _add_vjp)
register("sub", 2, _same_shape, np.subtract, _sub_vjp)
register("mul", 2, _same_shape, np.multiply, _mul_vjp, doc="elementwise product")
register("div", 2, _same_shape, np.divide, _div_vjp)
register("neg", 1, _same_shape, np.negative, _neg_vjp)
register("tanh", 1, _same_shape, np.tanh, _tanh_vjp)
register("sigmoid", 1, _same_shape, sigmoid, _sigmoid_vjp)
register("relu", 1, _same_shape, lambda v: np.maximum(v, 0), _relu_vjp)
register("exp", 1, _same_shape, np.exp, _exp_vjp)
register("log", 1, _same_shape, np.log, _log_vjp)
register("softmax", 1, _same_shape, softmax, _softmax_vjp, doc="softmax over features")
register("concat", None, _concat_shape, lambda *vs: np.concatenate(vs, axis=-1), _concat_vjp,
         doc="concatenation over features")
register("mse", 2, _loss_shape, mse, _mse_vjp, unbatched=True,
         doc="mean squared error over batch, steps and features")
register("cross_entropy", 2, _loss_shape, cross_entropy, _cross_entropy_vjp, unbatched=True,
         doc="mean over batch and steps of -Σ target log softmax(logits), from the logits")

register("sequence_mask", 2, lambda s, a: (s[1][0], 1), sequence_mask,
         lambda b, g, y, args, attrs: [None, None],
         doc="1 at the steps each example has (t < its length), else 0: [T, 1]")
register("masked_mse", 3, _loss_shape, masked_mse, _masked_mse_vjp, unbatched=True,
         doc="mse over the steps that count (variable lengths)")
register("masked_cross_entropy", 3, _loss_shape, masked_cross_entropy,
         _masked_cross_entropy_vjp, unbatched=True,
         doc="cross_entropy over the steps that count (variable lengths)")

# used only in gradients
register("zeros_shaped", 0, _leaf_shape, lambda *, shape, dtype: np.zeros(shape, dtype),
         unbatched=True,
         doc="zeros of a fixed shape (a gradient accumulator's start)")
register("matvec_t", 2, _matvec_t_shape, lambda w, g: g @ w, doc="Wᵀ @ g, per example")
register("outer_sum", 2, _outer_sum_shape, outer_sum, unbatched=True,
         doc="Σ over examples (and steps) of g vᵀ")
register("sum_batch", 1, lambda s, a: a["shape"], _sum_batch, unbatched=True,
         doc="sum over the batch (and steps) down to `shape`")
register("slice_features", 1, lambda s, a: s[0][:-1] + (a["stop"] - a["start"],),
         lambda g, *, start, stop: g[..., start:stop])
register("scatter_step", 1, lambda s, a: (a["steps"],) + s[0],
         lambda g, *, index, steps, dynamic: scatter_step(g, index=index, steps=steps),
         doc="a sequence of zeros but at step `index`")
register("sum_steps", 1, lambda s, a: s[0][1:], lambda g: g.sum(axis=1))
register("relu_grad", 2, _same_shape, lambda g, y: g * (y > 0))
register("softmax_grad", 2, _same_shape, softmax_grad)
register("cut_chunk", 1, _first,
         lambda g, *, index, chunk, shift, steps, dynamic: cut_chunk(
             g, index=index, chunk=chunk, shift=shift, steps=steps),
         doc="zero where the gradient would cross a chunk boundary (truncated BPTT)")
register("mse_grad", 3, lambda s, a: s[1], mse_grad)
register("masked_mse_grad", 4, lambda s, a: s[1], masked_mse_grad)
register("masked_cross_entropy_grad", 4, lambda s, a: s[1], masked_cross_entropy_grad)
register("cross_entropy_grad", 3, lambda s, a: s[1], cross_entropy_grad)

# made by optimisation passes (after differentiation: no VJP)
register("stack_rows", None, lambda s, a: (sum(x[0] for x in s), s[0][1]),
         lambda *ws: np.concatenate(ws, axis=0), unbatched=True,
         doc="matrices stacked row-wise: several products with one operand become one")
register("transpose", 1, lambda s, a: s[0][::-1], lambda w: np.ascontiguousarray(w.T),
         unbatched=True, doc="a matrix transposed (made once, laid out for the products)")
register("shift_steps", 2, _first, lambda seq, first, *, backward: shift_steps(
    seq, first, backward=backward),
         doc="the sequence one step later: what a carried value held entering each step")

ACTIVATIONS = {"tanh": "tanh", "sigmoid": "sigmoid", "relu": "relu", "softmax": "softmax"}
BINARY = {"+": "add", "-": "sub", "*": "mul", "/": "div", "@": "matvec"}
