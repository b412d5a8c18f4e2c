"""Feature-major code: every array of examples holds its batch axis last.

A batch-major value is [batch, features] at a step and [batch, steps, features] as a
sequence; feature-major, it is [features, batch] and [steps, features, batch]. Then each
gate of a stacked product is a contiguous block of rows (``z[0:256]``, where batch-major
slices are strided views), the recurrent product is ``W @ h``, which OpenBLAS runs
faster than ``h @ W_T`` for a batch of examples (at one example ``h @ W_T`` is the faster
GEMV: the module picks the layout per call), and a step of a sequence (``seq[t]``) is
one contiguous block: a loop that reads and writes [features, steps, batch] a step at a
time runs a quarter slower, its blocks scattered over the whole array.

Values without a batch axis (weights, biases, gradients of parameters) are the same in
both layouts. Ops whose text does not depend on the layout (a sum over every element)
keep their batch-major lowering; ops that read the batch, step or feature axes have one
here; any other op runs on the batch-major views of its arguments and its result is
made feature-major again (a view), which is always right.
"""

from __future__ import annotations

from rnncompiler.ir import ops
from rnncompiler.ir.ops import OP

from .lowering import ATOM, LOWERINGS, PRODUCT, _wrap

# ops whose batch-major text computes the feature-major value as well
SAME_TEXT = frozenset({OP.const, OP.identity, OP.cut_chunk, OP.sum_all, OP.mean_all, OP.size,
                       OP.transpose, OP.stack_rows, OP.zeros_shaped})
# each element from the same element of each argument; an argument without a batch axis
# (a bias) lines up with the leading axes, the batch axis added last
ELEMENTWISE = frozenset(ops.having("elementwise")) | {OP.relu_grad}


def rank(ctx, i: int | None = None) -> int:
    """The number of axes of argument ``i``'s array (of the result's, without ``i``)."""
    shape = ctx.shape if i is None else ctx.arg_shapes[i]
    batched = ctx.batched if i is None else ctx.arg_batched[i]
    return len(shape) + (1 + ctx.whole_sequences if batched else 0)


def to_feature_major(text: str, axes: int) -> str:
    """A batch-major array of ``axes`` axes as a feature-major view."""
    if axes <= 2:
        return f"{text}.T" if axes == 2 else text
    return f"{text}.transpose({', '.join(map(str, range(1, axes)))}, 0)"


def to_batch_major(text: str, axes: int) -> str:
    """A feature-major array of ``axes`` axes as a batch-major view."""
    if axes <= 2:
        return f"{text}.T" if axes == 2 else text
    return f"{text}.transpose({axes - 1}, {', '.join(map(str, range(axes - 1)))})"


def with_batch_axis(text: str, axes: int) -> str:
    """An array without a batch axis (a bias), lined up with feature-major ones: ``b[:, None]``."""
    return f"{text}[{':, ' * axes}None]" if axes <= 2 else f"{text}[..., None]"


def _elementwise(op: str):
    def lower(args, attrs, ctx):
        padded = [(with_batch_axis(_wrap(arg, ATOM), rank(ctx, i)), ATOM)
                  if ctx.batched and not batched and rank(ctx, i) else arg
                  for i, (arg, batched) in enumerate(zip(args, ctx.arg_batched))]
        return LOWERINGS[op](padded, attrs, ctx)
    return lower


def _matvec(args, attrs, ctx):
    # [m, n] @ [n, batch]; a sequence's steps as a stack of products ([steps, n, batch])
    weight, vector = args
    return f"{_wrap(weight, ATOM)} @ {_wrap(vector, PRODUCT + 1)}", PRODUCT


def _matvec_t(args, attrs, ctx):
    weight, grad = args
    return f"{_wrap(weight, ATOM)}.T @ {_wrap(grad, PRODUCT + 1)}", PRODUCT


def _outer_sum(args, attrs, ctx):
    # Σ over examples (and steps) of g vᵀ: [units, batch] @ [batch, n]
    grad, vector = args
    if rank(ctx, 0) == 2:
        return f"{_wrap(grad, PRODUCT)} @ {_wrap(vector, ATOM)}.T", PRODUCT
    return f"{grad[0]} @ {vector[0]}.T", PRODUCT  # (as [features, steps * batch])


def shifted_into(sequence: str, first: str, backward: bool, out: str) -> str:
    """``shift_steps`` of a sequence [steps, features, batch] into ``out`` [features,
    steps, batch]."""
    steps = f"{sequence}[:-1].transpose(1, 0, 2)"
    parts = [f"{sequence}[1:].transpose(1, 0, 2)", f"{first}[:, None]"] if backward else \
        [f"{first}[:, None]", steps]
    return f"np.concatenate([{', '.join(parts)}], axis=1, out={out})"


def _sum_batch(args, attrs, ctx):
    (grad,) = args
    axes = rank(ctx, 0)
    if len(attrs["shape"]) != 1 or axes > 3:
        return _batch_major(OP.sum_batch)(args, attrs, ctx)
    return f"{_wrap(grad, ATOM)}.sum(axis={'-1' if axes == 2 else '(0, 2)'})", ATOM


def _feature_axis(ctx, i: int | None = 0) -> int:
    return rank(ctx, i) - 2


def _shift_steps(args, attrs, ctx):
    sequence, first = (_wrap(arg, ATOM) for arg in args)
    parts = [f"{sequence}[1:]", f"{first}[None]"] if attrs["backward"] else \
        [f"{first}[None]", f"{sequence}[:-1]"]
    return f"np.concatenate([{', '.join(parts)}], axis=0)", ATOM


def _slice(args, attrs, ctx):
    leading = ":, " * _feature_axis(ctx)
    return f"{_wrap(args[0], ATOM)}[{leading}{attrs['start']}:{attrs['stop']}]", ATOM


FEATURE_MAJOR = {
    OP.matvec: _matvec,
    OP.matvec_t: _matvec_t,
    OP.outer_sum: _outer_sum,
    OP.sum_batch: _sum_batch,
    OP.zeros: lambda args, attrs, ctx: (f"np.zeros(({ctx.shape[0]}, batch), dtype=DTYPE)",
                                        ATOM),
    OP.slice_features: _slice,
    OP.concat: lambda args, attrs, ctx: (
        f"np.concatenate([{', '.join(text for text, _ in args)}], "
        f"axis={_feature_axis(ctx, None)})", ATOM),
    OP.sum_features: lambda args, attrs, ctx: (
        f"{_wrap(args[0], ATOM)}.sum(axis={_feature_axis(ctx)}, keepdims=True)", ATOM),
    OP.take_step: lambda args, attrs, ctx: args[0] if ctx.whole_sequences else (
        f"{_wrap(args[0], ATOM)}[{ctx.step_variable or attrs['index']}]", ATOM),
    OP.stack_steps: lambda args, attrs, ctx: (
        f"np.stack([{', '.join(text for text, _ in args)}], axis=0)", ATOM),
    OP.repeat_steps: lambda args, attrs, ctx: (
        f"np.repeat({_wrap(args[0], ATOM)}[None], {attrs['steps']}, axis=0)", ATOM),
    OP.sum_steps: lambda args, attrs, ctx: (f"{_wrap(args[0], ATOM)}.sum(axis=0)", ATOM),
    OP.shift_steps: _shift_steps,
    **{op: _elementwise(op) for op in ELEMENTWISE},
}


def _batch_major(op: str):
    """``op`` on the batch-major views of its arguments, its result made feature-major."""
    def lower(args, attrs, ctx):
        texts = [(to_batch_major(_wrap(arg, ATOM), rank(ctx, i)), ATOM)
                 if ctx.arg_batched[i] else arg for i, arg in enumerate(args)]
        text = LOWERINGS[op](texts, attrs, ctx)
        return (to_feature_major(_wrap(text, ATOM), rank(ctx)), ATOM) if ctx.batched else text
    return lower


def lower_feature_major(op: str, args, attrs, ctx):
    """How ``op`` reads when its arrays are feature-major (where none of its values has a
    batch axis, as batch-major)."""
    if op in SAME_TEXT or not (ctx.batched or any(ctx.arg_batched)):
        return LOWERINGS[op](args, attrs, ctx)
    return (FEATURE_MAJOR.get(op) or _batch_major(op))(args, attrs, ctx)


def product_into(op: str, args, ctx, out: str) -> str:
    """A product over whole sequences into the feature-major array ``out``
    ([steps, width, batch]): a stack of products, one a step."""
    weight, vector = args
    left = _wrap(weight, ATOM) + ("" if op == OP.matvec else ".T")
    return f"np.matmul({left}, {vector[0]}, out={out})"


def kept_shape(vector: str, width: int) -> str:
    """The shape of a product over whole sequences of ``vector``, ``width`` wide."""
    return f"({vector}.shape[0], {width}, batch)"


def swapped_weights(graph) -> dict[int, int]:
    """The products ``Wᵀ v`` whose weight and its transposed copy trade places (product ->
    the weight it reads): batch-major, ``h @ W_T`` reads the copy the passes made and
    ``g @ W`` the weight (each contiguous along its rows); feature-major, ``W @ h`` reads
    the weight and ``W_T @ g`` the copy."""
    swapped = {}
    copies = {graph.args(node)[0]: node for node, data in graph.items()
              if data.op == OP.transpose}
    for node, data in graph.items():
        weight = graph.args(node)[0] if data.op == OP.matvec_t else None
        if weight is not None and graph[weight].op == OP.transpose:
            swapped[node] = graph.args(weight)[0]
        elif weight in copies:
            swapped[node] = copies[weight]
    return swapped


def input_text(graph, checked: str, node: int, key: str) -> str:
    """An input feature-major, copied: a sequence into a kept array (a stack of products,
    one a step, reads a contiguous block of each step, and an elementwise op's result
    takes the layout of its operands: a view would make the loss's gradient strided); a
    vector too, so that a product with it sums as with the states the code makes (a state
    fed as an input computes what the same state started inside does, bit for bit)."""
    axes = len(graph[node].shape) + 1
    if axes > 2:
        return f'steps_first(kept, "{key}", {checked})'
    return f"np.ascontiguousarray({checked}.T)" if axes == 2 else checked


def step_of(sequence: str, feature_major: bool, index: str = "t") -> str:
    """Step t of ``sequence``: ``[:, t]``; feature-major, ``[t]`` (``index``: where step t
    is in it, ``t - start`` in a checkpointed segment's array)."""
    return f"{sequence}[{index}]" if feature_major else f"{sequence}[:, {index}]"
