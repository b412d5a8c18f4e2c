"""Where a gradient node goes: at the step, in the layer and in the backward block of what
it is a gradient of; and the zeros that stand for a cotangent nothing reaches.

The gradient of a loop's step lives in the loop's backward block, ``<block>.grad`` (added
on first use), which runs through the steps the other way; a gradient of a node outside
every loop stays in that node's layer."""

from __future__ import annotations

from ..ir.graph import Block, Graph
from ..ir.ops import OP
from .scope import GradientScope


class Placement:
    def __init__(self, graph: Graph, scope: GradientScope):
        self.graph = graph
        self.scope = scope
        self.zero_nodes: dict = {}  # (shape, batched) -> its zeros

    def where(self, node: int) -> dict:
        """Where the gradient of forward ``node`` goes."""
        if node not in self.scope.in_loop:
            return {"layer": self.graph[node].layer}
        loop, _, i = self.scope.in_loop[node]
        return self.where_in(loop, i)

    def where_in(self, loop, i: int) -> dict:
        """Where the gradient of ``loop``'s iteration ``i`` goes."""
        block = loop.block
        name = f"{block.name}.grad"
        if name not in self.graph.blocks:
            self.graph.blocks[name] = Block(name, block.layer, block.steps, not block.backward,
                                            block.cell, gradient_of=block.name,
                                            follows_steps=block.follows_steps)
        return {"step": block.order[i], "layer": block.layer, "block": name}

    def beside(self, node: int) -> dict:
        """Where ``node`` itself is: for a node made from it at the same step."""
        data = self.graph[node]
        return {"step": data.step, "layer": data.layer, "block": data.block}

    def zeros_like(self, node: int) -> int:
        """Zeros of ``node``'s shape: one node per shape, outside every loop, so that a
        zero cotangent is the same value at every step (a loop invariant)."""
        data = self.graph[node]
        key = (data.shape, data.batched)
        if key not in self.zero_nodes:
            if data.batched:
                ref = next(iter(self.graph.inputs.values()))
                zeros = self.graph.add(OP.zeros, [ref], size=data.shape[-1])
            else:
                zeros = self.graph.add(OP.zeros_shaped, shape=data.shape,
                                       dtype=self.graph.dtype)
            self.zero_nodes[key] = zeros
        return self.zero_nodes[key]
