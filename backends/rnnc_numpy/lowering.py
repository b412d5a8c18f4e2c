"""How each op reads in NumPy source: op -> expression text, with precedence.

An expression is ``(text, precedence)``; operands of lower precedence than an operator
needs are parenthesised. Evaluation order follows the graph exactly (``a * (b * c)`` keeps
its parentheses), so the generated code computes what the graph says, bit for bit.
"""

from __future__ import annotations

ATOM, UNARY, PRODUCT, SUM = 100, 60, 50, 40


def _wrap(expr, minimum: int) -> str:
    text, precedence = expr
    return text if precedence >= minimum else f"({text})"


def _binary(symbol: str, precedence: int):
    def lower(args, attrs, ctx):
        left, right = args
        return f"{_wrap(left, precedence)} {symbol} {_wrap(right, precedence + 1)}", precedence
    return lower


def _call(function: str):
    def lower(args, attrs, ctx):
        return f"{function}({', '.join(text for text, _ in args)})", ATOM
    return lower


def _matvec(args, attrs, ctx):
    weight, vector = args
    if _over_sequences(ctx):
        flat, right, width = _flat_operands("matvec", args, ctx)
        return f"({flat} @ {right}).reshape(batch, -1, {width})", ATOM
    return f"{_wrap(vector, PRODUCT)} @ {_wrap(weight, ATOM)}.T", PRODUCT


def _flat_operands(op: str, args, ctx) -> tuple[str, str, int]:
    """A product over whole sequences as one 2-D product: the sequence as rows
    ([batch * steps, n]), the weight as the right operand, and the product's width."""
    weight, vector = args
    flat = f"{_wrap(vector, ATOM)}.reshape(-1, {ctx.arg_shapes[1][-1]})"
    if op == "matvec":
        return flat, f"{_wrap(weight, ATOM)}.T", ctx.arg_shapes[0][0]
    return flat, _wrap(weight, ATOM), ctx.arg_shapes[0][1]


def product_into(op: str, args, ctx, out: str) -> str:
    """The statement computing a product over whole sequences into the array ``out``
    ([batch, steps, width])."""
    flat, right, width = _flat_operands(op, args, ctx)
    return f"np.matmul({flat}, {right}, out={out}.reshape(-1, {width}))"


def _over_sequences(ctx) -> bool:
    """A product with every step of every example's sequence, done as one 2-D product
    ([batch * steps, n] @ [n, m]): NumPy's product of a [batch, steps, n] array runs one
    small product per example, a third to a half slower."""
    return not ctx.step_variable and len(ctx.arg_shapes[1]) == 2 and ctx.arg_batched[1]


def _take_step(args, attrs, ctx):
    (sequence,) = args
    if ctx.whole_sequences:
        return sequence
    step = ctx.step_variable or attrs["index"]  # outside a loop: a fixed step
    return f"{_wrap(sequence, ATOM)}[:, {step}]", ATOM


def _const(args, attrs, ctx):
    value = attrs["value"]
    return (repr(int(value)) if value == int(value) else repr(value)), ATOM


def _concat(args, attrs, ctx):
    return f"np.concatenate([{', '.join(text for text, _ in args)}], axis=-1)", ATOM


def _stack(args, attrs, ctx):
    return f"np.stack([{', '.join(text for text, _ in args)}], axis=1)", ATOM


def _repeat(args, attrs, ctx):
    (vector,) = args
    return f"np.repeat({_wrap(vector, ATOM)}[:, None, :], {attrs['steps']}, axis=1)", ATOM


def _zeros(args, attrs, ctx):
    return f"np.zeros((batch, {attrs['size']}), dtype=DTYPE)", ATOM


def _zeros_shaped(args, attrs, ctx):
    return f"np.zeros({tuple(attrs['shape'])!r}, dtype=DTYPE)", ATOM


def _matvec_t(args, attrs, ctx):
    weight, grad = args
    if _over_sequences(ctx):
        flat, right, width = _flat_operands("matvec_t", args, ctx)
        return f"({flat} @ {right}).reshape(batch, -1, {width})", ATOM
    return f"{_wrap(grad, PRODUCT)} @ {_wrap(weight, PRODUCT + 1)}", PRODUCT


def _outer_sum(args, attrs, ctx):
    # Σ over the batch of g vᵀ: one product [units, batch] @ [batch, n]
    grad, vector = args
    if len(ctx.arg_shapes[0]) == 1 and not ctx.whole_sequences:
        return f"{_wrap(grad, ATOM)}.T @ {_wrap(vector, PRODUCT + 1)}", PRODUCT
    return f"outer_sum({grad[0]}, {vector[0]})", ATOM


def _sum_batch(args, attrs, ctx):
    (grad,) = args
    leading = len(ctx.arg_shapes[0]) + 1 + ctx.whole_sequences - len(attrs["shape"])
    axes = "0" if leading == 1 else repr(tuple(range(leading)))
    return f"{_wrap(grad, ATOM)}.sum(axis={axes})", ATOM


def _helper(function: str, *keywords: str):
    def lower(args, attrs, ctx):
        texts = [text for text, _ in args]
        # a length that follows T is the variable ``steps``; so is the last step's index
        steps = ctx.steps_variable if attrs.get("dynamic") and ctx.steps_variable else None
        for key in keywords:
            in_loop = ctx.step_variable and not ctx.whole_sequences
            value = attrs[key]
            if key == "index" and in_loop:
                value = ctx.step_variable
            elif key == "index" and steps and value == attrs["steps"] - 1:
                value = f"{steps} - 1"
            elif key == "steps" and steps:
                value = steps
            texts.append(f"{key}={value}")
        return f"{function}({', '.join(texts)})", ATOM
    return lower


LOWERINGS = {
    "const": _const,
    "zeros": _zeros,
    "identity": lambda args, attrs, ctx: args[0],
    "take_step": _take_step,
    "stack_steps": _stack,
    "repeat_steps": _repeat,
    "matvec": _matvec,
    "add": _binary("+", SUM),
    "sub": _binary("-", SUM),
    "mul": _binary("*", PRODUCT),
    "div": _binary("/", PRODUCT),
    "neg": lambda args, attrs, ctx: (f"-{_wrap(args[0], UNARY)}", UNARY),
    "tanh": _call("np.tanh"),
    "sigmoid": _call("sigmoid"),
    "relu": lambda args, attrs, ctx: (f"np.maximum({args[0][0]}, 0)", ATOM),
    "exp": _call("np.exp"),
    "log": _call("np.log"),
    "softmax": _call("softmax"),
    "concat": _concat,
    "sequence_mask": _call("sequence_mask"),
    # gradients
    "zeros_shaped": _zeros_shaped,
    "matvec_t": _matvec_t,
    "outer_sum": _outer_sum,
    "sum_batch": _sum_batch,
    "slice_features": lambda args, attrs, ctx: (
        f"{_wrap(args[0], ATOM)}[..., {attrs['start']}:{attrs['stop']}]", ATOM),
    "scatter_step": _helper("scatter_step", "index", "steps"),
    "sum_steps": lambda args, attrs, ctx: (f"{_wrap(args[0], ATOM)}.sum(axis=1)", ATOM),
    "relu_grad": lambda args, attrs, ctx: (
        f"{_wrap(args[0], PRODUCT)} * ({args[1][0]} > 0)", PRODUCT),
    "softmax_grad": _call("softmax_grad"),
    "cut_chunk": _helper("cut_chunk", "index", "chunk", "shift", "steps"),
    # made by optimisation passes
    "stack_rows": lambda args, attrs, ctx: (
        f"np.concatenate([{', '.join(text for text, _ in args)}], axis=0)", ATOM),
    "transpose": lambda args, attrs, ctx: (f"np.ascontiguousarray({_wrap(args[0], ATOM)}.T)",
                                           ATOM),
    "shift_steps": lambda args, attrs, ctx: (
        f"shift_steps({args[0][0]}, {args[1][0]}, backward={attrs['backward']})", ATOM),
    # the losses' primitive ops (decompose_losses)
    "sum_all": _call("np.sum"),
    "mean_all": _call("np.mean"),
    "size": lambda args, attrs, ctx: (f"{_wrap(args[0], ATOM)}.size", ATOM),
    "sum_features": lambda args, attrs, ctx: (
        f"{_wrap(args[0], ATOM)}.sum(axis=-1, keepdims=True)", ATOM),
    "log_softmax": _call("log_softmax"),
    # class ids
    "embed": lambda args, attrs, ctx: (f"{_wrap(args[0], ATOM)}[{args[1][0]}]", ATOM),
    "embed_grad": lambda args, attrs, ctx: (
        f"embed_grad({args[0][0]}, {args[1][0]}, classes={attrs['classes']}"
        + (f", padding_id={attrs['padding_id']})" if "padding_id" in attrs else ")"), ATOM),
    "one_hot": lambda args, attrs, ctx: (
        f"np.eye({attrs['classes']}, dtype=DTYPE)[{args[0][0]}]", ATOM),
}

# module-level helpers the lowerings call: the ops' own reference evaluations, by name
HELPERS = {
    "sigmoid": ("sigmoid",),
    "softmax": ("softmax",),
    "log_softmax": ("log_softmax",),
    "sequence_mask": ("sequence_mask",),
    "softmax_grad": ("softmax_grad",),
    "scatter_step": ("scatter_step",),
    "cut_chunk": ("cut_chunk",),
    "outer_sum": ("outer_sum",),
    "shift_steps": ("shift_steps",),
    "embed_grad": ("embed_grad",),
}

# ops that are variables of the module rather than expressions
LEAVES = ("input", "param")

# ops whose value may be an argument's array, or a view of it (a stack of steps that run
# at once is the value of its steps' computation)
VIEWS = ("identity", "take_step", "slice_features", "cut_chunk", "stack_steps")
