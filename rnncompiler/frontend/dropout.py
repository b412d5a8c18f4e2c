"""Dropout in a spec (docs/spec.md, `dropout` and `rnn`): the rates, checked where they
are written, and the rule of where a cell's recurrent dropout applies.

A rate is the fraction of values dropped, 0 <= rate < 1. The `dropout` layer has `rate`;
an `rnn` layer has `dropout` (its cell's input x[t]) and `recurrent_dropout` (its output
state h[t-1] where the cell multiplies it by a matrix). What the rates do to the graph is
``build/dropout.py``'s.
"""

from __future__ import annotations

import math

from . import equations as eq
from .checks import describe
from .yaml_source import Source

RNN_KEYS = ("dropout", "recurrent_dropout")  # the dropout keys of an rnn layer


def check_rate(source: Source, path, value) -> float:
    """A rate: a number from 0 to below 1."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or not 0 <= value < 1:
        why = ": a rate of 1 or more drops every value" if number and value >= 1 else ""
        raise source.error(path, "expected a rate from 0 to below 1 (the fraction of values "
                                 f"dropped), got {describe(value)}{why}")
    return float(value)


def misplaced_keys(source: Source, path, kind: str | None, entry: dict) -> tuple:
    """The rnn dropout keys on a layer of another type, each an error kept on ``source``
    (with the fix); returned so that they are not reported again as unknown keys."""
    if kind in (None, "rnn"):
        return ()
    found = tuple(key for key in RNN_KEYS if key in entry)
    name = entry.get("name")
    for key in found:
        if kind == "dropout":
            fix = (f"a dropout layer's fraction is `rate`: write `rate: {entry[key]}`"
                   if key == "dropout" else "`recurrent_dropout` is for rnn layers")
        else:
            fix = (f"`{key}` is a key of rnn layers; to drop values of this layer's input, "
                   "put a layer `{type: dropout, input: ..., rate: ...}` before it")
        message = f"layer {name}: {fix}" if isinstance(name, str) else fix
        source.keep(source.error(path + (key,), message, key=True))
    return found


def locals_reading_output(cell) -> set[str]:
    """The locals of ``cell`` that read its output state's previous value outside any
    ``@`` product, directly or through such locals: those that recurrent dropout computes
    again from the masked h[t-1] where a product reads them (``z = concat(x[t], h[t-1])``
    in ``W @ z``). A local that reads it only inside products (a GRU's gate ``r``) already
    reads the masked one, and is used as it is."""
    found: set[str] = set()
    for equation in cell.equations:
        if not equation.is_state and _reads(equation.expr, cell.output, found, False):
            found.add(equation.target)
    return found


def _reads(expr, output: str, reading: set, in_product: bool) -> bool:
    """Whether ``expr`` reads h[t-1] outside a product (``in_product``: inside one)."""
    if isinstance(expr, eq.State):
        return not in_product and expr.previous and expr.name == output
    if isinstance(expr, eq.Local):
        return not in_product and expr.name in reading
    if isinstance(expr, eq.Binary):
        return _reads(expr.left, output, reading, in_product) or \
            _reads(expr.right, output, reading, in_product or expr.op == "@")
    if isinstance(expr, eq.Negate):
        return _reads(expr.operand, output, reading, in_product)
    if isinstance(expr, eq.Call):
        return any(_reads(arg, output, reading, in_product) for arg in expr.args)
    return False
