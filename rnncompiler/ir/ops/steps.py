"""Ops on the time axis: one step of a sequence, steps made a sequence, a vector repeated,
and the time-axis ops of gradients (scatter, sum, shift, truncation's cut, lengths' mask)."""

from __future__ import annotations

import numpy as np

from .registry import ShapeError, first_shape, register


def _take_step_vjp(b, g, y, args, attrs):
    return [b.add("scatter_step", [g], index=attrs["index"], steps=b.shape(args[0])[0],
                  dynamic=False)]


register("take_step", 1, lambda s, a: s[0][1:], lambda v, *, index: v[:, index],
         _take_step_vjp, traits=("zero_if_all",), doc="the step `index` of a sequence")


def _stack_shape(shapes, attrs):
    if len(set(shapes)) != 1:
        raise ShapeError(f"stack_steps of {list(shapes)}")
    return (len(shapes),) + shapes[0]


def _stack_steps_vjp(b, g, y, args, attrs):
    return [b.add("take_step", [g], index=t) if need else None
            for t, need in enumerate(b.needs)]


register("stack_steps", None, _stack_shape, lambda *vs: np.stack(vs, axis=1), _stack_steps_vjp,
         doc="per-step values as one sequence, in the order given")


def _repeat_steps_vjp(b, g, y, args, attrs):
    return [b.add("sum_steps", [g])]


register("repeat_steps", 1, lambda s, a: (a["steps"],) + s[0],
         lambda v, *, steps: np.repeat(v[:, None, :], steps, axis=1), _repeat_steps_vjp,
         doc="a vector repeated at every step")


def sequence_mask(lengths, sequence):
    """[batch, T, 1]: 1 at the steps an example has (t < its length), else 0."""
    steps = np.arange(sequence.shape[1])
    return (steps[None, :] < lengths[:, None])[:, :, None].astype(sequence.dtype)


register("sequence_mask", 2, lambda s, a: (s[1][0], 1), sequence_mask,
         lambda b, g, y, args, attrs: [None, None], traits=("shape_only",),
         doc="1 at the steps each example has (t < its length), else 0: [T, 1]")


# --- used only in gradients ---------------------------------------------------------------

def scatter_step(g, *, index, steps):
    out = np.zeros((g.shape[0], steps) + g.shape[1:], dtype=g.dtype)
    out[:, index] = g
    return out


register("scatter_step", 1, lambda s, a: (a["steps"],) + s[0],
         lambda g, *, index, steps, dynamic: scatter_step(g, index=index, steps=steps),
         doc="a sequence of zeros but at step `index`")

register("sum_steps", 1, lambda s, a: s[0][1:], lambda g: g.sum(axis=1),
         traits=("zero_if_all",))


def cut_chunk(g, *, index, chunk, shift, steps):
    boundary = index + shift  # the gradient crosses between boundary-1 and boundary
    return g * 0 if 0 < boundary < steps and boundary % chunk == 0 else g


register("cut_chunk", 1, first_shape,
         lambda g, *, index, chunk, shift, steps, dynamic: cut_chunk(
             g, index=index, chunk=chunk, shift=shift, steps=steps),
         traits=("zero_if_all",),
         doc="zero where the gradient would cross a chunk boundary (truncated BPTT)")


# --- made by optimisation passes (after differentiation: no VJP) ---------------------------

def shift_steps(seq, first, *, backward=False):
    """[first, seq[0], ..., seq[T-2]] (or, running backward, [seq[1], ..., seq[T-1], first])."""
    first = first[:, None]
    if backward:
        return np.concatenate([seq[:, 1:], first], axis=1)
    return np.concatenate([first, seq[:, :-1]], axis=1)


register("shift_steps", 2, first_shape, lambda seq, first, *, backward: shift_steps(
    seq, first, backward=backward),
         doc="the sequence one step later: what a carried value held entering each step")
