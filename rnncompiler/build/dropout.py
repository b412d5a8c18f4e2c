"""Dropout's masks (docs/spec.md, Array files): the inputs a training graph reads, and
their values.

Dropout is the identity in the forward graph. The training graph multiplies by masks fed
as inputs, already scaled (0, or 1 / (1 - rate): inverted dropout), so its gradients are
exact for the masks given and every backend needs nothing but inputs and products:

- a `dropout` layer: ``<layer>.dropout``, [batch, steps, features] on a sequence (a mask
  at every step) or [batch, features] on a vector;
- an `rnn` layer with `dropout`: ``<layer>.dropout`` [batch, input], one mask for the
  whole sequence, on the cell's x[t] (Gal & Ghahramani 2016; Keras ``LSTM(dropout=)``);
- an `rnn` layer with `recurrent_dropout`: ``<layer>.recurrent_dropout`` [batch, units],
  on its output state h[t-1] wherever a ``@`` product reads it (directly or through
  locals), the same at every step;
- a bidirectional layer: each direction its own, ``<layer>.fwd.…`` and ``<layer>.bwd.…``.

A rate of 0 makes no mask. ``sample_masks`` draws masks for a batch (what ``rnnc train``
feeds), ``unit_masks`` gives ones (no dropout: what ``grad`` feeds when none are given).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..frontend import equations as eq
from ..frontend.dropout import locals_reading_output
from ..frontend.params import layer_input_features
from ..frontend.spec import Spec
from ..ir.graph import Graph
from ..ir.ops import OP
from .maps import map_steps


@dataclass(frozen=True)
class DropoutMask:
    """One mask input: its name, the layer it belongs to, its rate and shape per example
    (``steps``: a mask at every step, None following T; only a dropout layer's on a
    sequence has steps)."""

    name: str
    layer: str
    rate: float
    features: int
    sequence: bool = False
    steps: int | None = None

    def shape(self, batch: int, steps: int | None) -> tuple[int, ...]:
        """[batch, steps, features] or [batch, features], with T = ``steps``."""
        if not self.sequence:
            return (batch, self.features)
        return (batch, self.steps if self.steps is not None else steps, self.features)


def mask_name(layer: str, direction: str, key: str) -> str:
    """``<layer>.<key>``, or ``<layer>.fwd.<key>`` / ``<layer>.bwd.<key>``."""
    return f"{layer}.{direction}.{key}" if direction else f"{layer}.{key}"


def dropout_masks(spec: Spec) -> list[DropoutMask]:
    """Every mask input of ``spec``'s training graph, in layer order."""
    masks = []
    for layer in spec.layers:
        if layer.type == "dropout" and layer.rate:
            output = layer.output
            masks.append(DropoutMask(mask_name(layer.name, "", "dropout"), layer.name,
                                     layer.rate, output.features, output.sequence,
                                     output.steps))
        if layer.type != "rnn":
            continue
        sizes = {"dropout": layer_input_features(spec, layer),
                 "recurrent_dropout": layer.units}
        for direction in layer.directions:
            for key, size in sizes.items():
                rate = getattr(layer, key)
                if rate:
                    masks.append(DropoutMask(mask_name(layer.name, direction, key),
                                             layer.name, rate, size))
    return masks


def sample_masks(spec: Spec, batch: int, steps: int | None, rng) -> dict[str, np.ndarray]:
    """A mask for every input of ``dropout_masks``, drawn from ``rng`` in their order: each
    value kept with probability 1 - rate and then 1 / (1 - rate), else 0."""
    masks = {}
    for mask in dropout_masks(spec):
        kept = rng.random(mask.shape(batch, steps)) >= mask.rate
        masks[mask.name] = np.where(kept, 1.0 / (1.0 - mask.rate), 0.0).astype(spec.dtype)
    return masks


def unit_masks(spec: Spec, batch: int, steps: int | None) -> dict[str, np.ndarray]:
    """Ones for every mask: the training graph without dropout."""
    return {mask.name: np.ones(mask.shape(batch, steps), spec.dtype)
            for mask in dropout_masks(spec)}


def apply_mask(graph: Graph, layer, source: int, mask: int, steps: int | None) -> int:
    """A dropout layer in a training graph: ``source`` times ``mask``; on a sequence of
    ``steps``, one product a step in the layer's own block (as a dense layer's)."""
    if steps is None:
        return graph.add(OP.mul, [source, mask], layer=layer.name)

    def step(t, x_t, where):
        m_t = graph.add(OP.take_step, [mask], place="mask", index=t, **where)
        return graph.add(OP.mul, [x_t, m_t], place="y", **where)
    return map_steps(graph, layer, source, steps, step)


class RecurrentDropout:
    """What a cell step (``unroll._CellStep``: ``graph``, ``cell``, ``previous``, ``where``,
    ``node``) does for recurrent dropout: h[t-1], its output state, times the mask where
    the right side of a ``@`` reads it, directly or through locals that read it outside
    products (``locals_reading_output``: computed again from the masked h[t-1] there);
    elsewhere (``z * h[t-1]``, c[t-1]) as it is.
    So Keras places it in its LSTM, GRU and SimpleRNN cells."""

    def mask_recurrence(self, cell, mask: int | None) -> None:
        self.recurrent_mask = mask
        self.reading_output = locals_reading_output(cell) if mask is not None else set()
        self.in_product = False  # building the right side of a `@`
        self.masked: dict[str, int] = {}  # this step's masked h[t-1] and locals

    def operand(self, expr, right_of_product: bool) -> int:
        """The node of ``expr``, an operand: of the right side of a product, masked."""
        outer = self.in_product
        self.in_product = outer or (right_of_product and self.recurrent_mask is not None)
        try:
            return self.node(expr)
        finally:
            self.in_product = outer

    def reads_masked(self, expr) -> bool:
        """Whether ``expr``, inside a product's right side, reads the masked h[t-1]."""
        if isinstance(expr, eq.State):
            return expr.previous and expr.name == self.cell.output
        return isinstance(expr, eq.Local) and expr.name in self.reading_output

    def masked_node(self, expr) -> int:
        """The masked h[t-1] (one node a step), or a local computed again from it."""
        key = "dropout.h" if isinstance(expr, eq.State) else expr.name
        if key not in self.masked:
            if isinstance(expr, eq.State):
                self.masked[key] = self.graph.add(
                    OP.mul, [self.previous[expr.name], self.recurrent_mask],
                    place="dropout.h", **self.where)
            else:
                equation = next(e for e in self.cell.equations if e.target == expr.name)
                self.masked[key] = self.node(equation.expr)
        return self.masked[key]


def batch_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of the masks of batch ``index`` of ``epoch`` (counted from 0) of a
    training run seeded ``seed``: the same on resuming, apart from the shuffling's."""
    return np.random.default_rng([seed, epoch, index, DROPOUT_STREAM])


DROPOUT_STREAM = 0x64726F70  # "drop": keeps these generators apart from the shuffling's
