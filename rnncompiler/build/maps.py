"""A layer with no recurrence applied at every step of a sequence (a dense layer, a
dropout layer's mask): one block of its own, step ``t`` reading ``x[t]``, its outputs
stacked — a map that a backend runs over whole sequences."""

from __future__ import annotations

from collections.abc import Callable

from ..ir.graph import Block, Graph
from ..ir.ops import OP


def map_steps(graph: Graph, layer, source: int, steps: int, step: Callable) -> int:
    """``step(t, x_t, where)`` -> the node of step ``t``, for every step of ``source``;
    their sequence."""
    graph.blocks[layer.name] = Block(layer.name, layer.name, steps,
                                     follows_steps=layer.output.steps is None)
    outputs = []
    for t in range(steps):
        where = {"step": t, "layer": layer.name, "block": layer.name}
        x_t = graph.add(OP.take_step, [source], place="x", index=t, **where)
        outputs.append(step(t, x_t, where))
    return graph.add(OP.stack_steps, outputs, layer=layer.name)
