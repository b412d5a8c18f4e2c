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
    return f"{_wrap(vector, PRODUCT)} @ {_wrap(weight, ATOM)}.T", PRODUCT


def _take_step(args, attrs, ctx):
    (sequence,) = args
    if ctx.whole_sequences:
        return sequence
    return f"{_wrap(sequence, ATOM)}[:, {ctx.step_variable}]", ATOM


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
}

# ops that are variables of the module rather than expressions
LEAVES = ("input", "param")
