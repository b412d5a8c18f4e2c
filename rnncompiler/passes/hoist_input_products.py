"""Hoist input products out of the loop: every step's ``W @ x[t]`` becomes one product
``W @ x`` over the whole sequence before the loop, read back one step at a time.

Safe when ``W`` is the same at every step (a parameter, or made from parameters) and
``x`` is a sequence computed before the loop: the product of each step is then a slice
of the product of all steps. Also applies to ``Wᵀ @ g[t]`` in backward loops.

The biases then join the hoisted products: ``hoist_invariant_terms``.
"""

from __future__ import annotations

from ..ir import ops
from ..ir.graph import Graph
from ..ir.ops import OP

PRODUCTS = ops.having("product")


def hoist_input_products(graph: Graph) -> bool:
    hoisted: dict[tuple, int] = {}
    changed = False
    for node in list(graph.nx.nodes):
        data = graph[node]
        if data.op not in PRODUCTS or data.step is None:
            continue
        weight, vector = graph.args(node)
        step_node = graph[vector]
        if graph[weight].batched or graph[weight].step is not None \
                or step_node.op != OP.take_step or step_node.step != data.step:
            continue
        (sequence,) = graph.args(vector)
        if graph[sequence].step is not None:
            continue
        key = (data.op, weight, sequence)
        if key not in hoisted:
            hoisted[key] = graph.add(data.op, [weight, sequence], layer=data.layer,
                                     place=f"{data.place}.all")
        step = graph.add(OP.take_step, [hoisted[key]], index=data.step, step=data.step,
                         layer=data.layer, block=data.block, place=data.place)
        graph.substitute(node, step)
        changed = True
    return changed
