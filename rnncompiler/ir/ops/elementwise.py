"""Elementwise ops (arithmetic, the functions of the equation language) and the ops along
the feature axis (softmax and its log, concatenation, slices of it)."""

from __future__ import annotations

import numpy as np

from .registry import ShapeError, first_shape, register, same_shape

ARITHMETIC = ("elementwise", "per_example")


def _identity_vjp(b, g, y, args, attrs):
    return [g]


register("identity", 1, first_shape, lambda v: v, _identity_vjp, traits=("zero_if_all",))


def _add_vjp(b, g, y, args, attrs):
    return [b.unbroadcast(g, arg) if need else None for arg, need in zip(args, b.needs)]


register("add", 2, same_shape, np.add, _add_vjp, symbol="+",
         traits=(*ARITHMETIC, "commutative", "zero_if_all"))


def _sub_vjp(b, g, y, args, attrs):
    left, right = args
    return [b.unbroadcast(g, left) if b.needs[0] else None,
            b.unbroadcast(b.add("neg", [g]), right) if b.needs[1] else None]


register("sub", 2, same_shape, np.subtract, _sub_vjp, symbol="-",
         traits=(*ARITHMETIC, "zero_if_all"))


def _mul_vjp(b, g, y, args, attrs):
    # d (u * v) = g * v, g * u
    left, right = args
    return [b.unbroadcast(b.add("mul", [g, right]), left) if b.needs[0] else None,
            b.unbroadcast(b.add("mul", [g, left]), right) if b.needs[1] else None]


register("mul", 2, same_shape, np.multiply, _mul_vjp, symbol="*",
         traits=(*ARITHMETIC, "commutative", "zero_if_any"), doc="elementwise product")


def _div_vjp(b, g, y, args, attrs):
    # d (u / v) = g / v, -g * y / v
    left, right = args
    return [b.unbroadcast(b.add("div", [g, right]), left) if b.needs[0] else None,
            b.unbroadcast(b.add("neg", [b.add("div", [b.add("mul", [g, y]), right])]), right)
            if b.needs[1] else None]


register("div", 2, same_shape, np.divide, _div_vjp, symbol="/", traits=ARITHMETIC)


def _neg_vjp(b, g, y, args, attrs):
    return [b.add("neg", [g])]


register("neg", 1, same_shape, np.negative, _neg_vjp, traits=(*ARITHMETIC, "zero_if_all"))


def _tanh_vjp(b, g, y, args, attrs):
    # d tanh = g * (1 - y²)
    return [b.add("mul", [g, b.add("sub", [b.const(1.0), b.add("mul", [y, y])])])]


register("tanh", 1, same_shape, np.tanh, _tanh_vjp,
         traits=(*ARITHMETIC, "function", "activation"))


def sigmoid(v):
    # 1/(1+exp(-v)) written through tanh: no overflow for large |v|, same value;
    # 0.5 * (1 + tanh(0.5 v)), computed in one buffer
    out = np.multiply(v, 0.5)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


def _sigmoid_vjp(b, g, y, args, attrs):
    # d sigmoid = g * y * (1 - y)
    return [b.add("mul", [b.add("mul", [g, y]), b.add("sub", [b.const(1.0), y])])]


register("sigmoid", 1, same_shape, sigmoid, _sigmoid_vjp,
         traits=(*ARITHMETIC, "function", "activation"))


def _relu_vjp(b, g, y, args, attrs):
    return [b.add("relu_grad", [g, y])]  # g where y > 0


register("relu", 1, same_shape, lambda v: np.maximum(v, 0), _relu_vjp,
         traits=(*ARITHMETIC, "function", "activation"))


def _exp_vjp(b, g, y, args, attrs):
    return [b.add("mul", [g, y])]  # d exp = g * y


register("exp", 1, same_shape, np.exp, _exp_vjp, traits=(*ARITHMETIC, "function"))


def _log_vjp(b, g, y, args, attrs):
    return [b.add("div", [g, args[0]])]  # d log = g / x


register("log", 1, same_shape, np.log, _log_vjp, traits=(*ARITHMETIC, "function"))


def softmax(v):
    shifted = np.exp(v - v.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _softmax_vjp(b, g, y, args, attrs):
    return [b.add("softmax_grad", [g, y])]  # y * (g - Σ g y)


register("softmax", 1, same_shape, softmax, _softmax_vjp,
         traits=("per_example", "function", "activation"), doc="softmax over features")


def _concat_shape(shapes, attrs):
    prefixes = {shape[:-1] for shape in shapes}
    if len(prefixes) != 1 or any(len(shape) == 0 for shape in shapes):
        raise ShapeError(f"concat of {list(shapes)}")
    return shapes[0][:-1] + (sum(shape[-1] for shape in shapes),)


def _concat_vjp(b, g, y, args, attrs):
    grads, start = [], 0
    for arg, need in zip(args, b.needs):
        stop = start + b.shape(arg)[-1]
        grads.append(b.add("slice_features", [g], start=start, stop=stop) if need else None)
        start = stop
    return grads


register("concat", None, _concat_shape, lambda *vs: np.concatenate(vs, axis=-1), _concat_vjp,
         traits=("per_example", "function", "zero_if_all"), doc="concatenation over features")


# --- used only in gradients ---------------------------------------------------------------

register("slice_features", 1, lambda s, a: s[0][:-1] + (a["stop"] - a["start"],),
         lambda g, *, start, stop: g[..., start:stop], traits=("per_example", "zero_if_all"))

register("relu_grad", 2, same_shape, lambda g, y: g * (y > 0),
         traits=("per_example", "zero_if_all"))


def softmax_grad(g, y):
    return y * (g - (g * y).sum(axis=-1, keepdims=True))


register("softmax_grad", 2, same_shape, softmax_grad, traits=("per_example",))


# --- made by optimisation passes (after differentiation: no VJP) ---------------------------

def log_softmax(v):
    # shifted by the largest logit: no exp overflows, and the sum is at least 1 (no log 0)
    shifted = v - v.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


register("log_softmax", 1, same_shape, log_softmax, traits=("per_example",),
         doc="log softmax over features, stably (the cross-entropy's, from the logits)")
