"""The losses, whole-sequence reductions to one number, and their gradients: the mean
squared error and the cross-entropy from logits, over every step or, with lengths, over
the steps that count."""

from __future__ import annotations

import numpy as np

from .elementwise import log_softmax, softmax
from .registry import ShapeError, register


def _loss_shape(shapes, attrs):
    if shapes[0] != shapes[1]:
        raise ShapeError(f"loss of {shapes[0]} against {shapes[1]}")
    return ()


def _gradient_shape(shapes, attrs):
    return shapes[1]


def mse(pred, target):
    return np.mean((pred - target) ** 2)


def _mse_vjp(b, g, y, args, attrs):
    return [b.add("mse_grad", [g, *args]), None]


register("mse", 2, _loss_shape, mse, _mse_vjp, unbatched=True, traits=("layout_free",),
         doc="mean squared error over batch, steps and features")


def cross_entropy(logits, target):
    per_row = -(target * log_softmax(logits)).sum(axis=-1)
    return per_row.mean()


def _cross_entropy_vjp(b, g, y, args, attrs):
    return [b.add("cross_entropy_grad", [g, *args]), None]


register("cross_entropy", 2, _loss_shape, cross_entropy, _cross_entropy_vjp, unbatched=True,
         traits=("layout_free",),
         doc="mean over batch and steps of -Σ target log softmax(logits), from the logits")


def masked_mse(pred, target, mask):
    # the mean over the steps that count (mask 1), of every example and feature
    counted = mask.sum() * pred.shape[-1]
    return (mask * (pred - target) ** 2).sum() / counted


def _masked_mse_vjp(b, g, y, args, attrs):
    return [b.add("masked_mse_grad", [g, *args]), None, None]


register("masked_mse", 3, _loss_shape, masked_mse, _masked_mse_vjp, unbatched=True,
         doc="mse over the steps that count (variable lengths)")


def masked_cross_entropy(logits, target, mask):
    per_row = -(target * log_softmax(logits)).sum(axis=-1, keepdims=True)
    return (mask * per_row).sum() / mask.sum()


def _masked_cross_entropy_vjp(b, g, y, args, attrs):
    return [b.add("masked_cross_entropy_grad", [g, *args]), None, None]


register("masked_cross_entropy", 3, _loss_shape, masked_cross_entropy,
         _masked_cross_entropy_vjp, unbatched=True,
         doc="cross_entropy over the steps that count (variable lengths)")


# --- used only in gradients ---------------------------------------------------------------

def mse_grad(g, pred, target):
    # d mean((p - t)²) = 2 (p - t) / N
    return g * 2 * (pred - target) / pred.size


register("mse_grad", 3, _gradient_shape, mse_grad, traits=("per_example",))


def cross_entropy_grad(g, logits, target):
    # d mean(-Σ t log softmax(z)) = (softmax(z) - t) / rows, for t summing to one
    rows = logits.size // logits.shape[-1]
    return g * (softmax(logits) * target.sum(axis=-1, keepdims=True) - target) / rows


register("cross_entropy_grad", 3, _gradient_shape, cross_entropy_grad, traits=("per_example",))


def masked_mse_grad(g, pred, target, mask):
    counted = mask.sum() * pred.shape[-1]
    return g * 2 * mask * (pred - target) / counted


register("masked_mse_grad", 4, _gradient_shape, masked_mse_grad)


def masked_cross_entropy_grad(g, logits, target, mask):
    return g * mask * (softmax(logits) * target.sum(axis=-1, keepdims=True) - target) \
        / mask.sum()


register("masked_cross_entropy_grad", 4, _gradient_shape, masked_cross_entropy_grad)
