"""What the backward pass covers, read off the forward graph before any gradient node is
added: which nodes depend on a parameter, which need a gradient, and where each node of a
loop sits (its loop, its place in the cell, its iteration)."""

from __future__ import annotations

from collections import defaultdict

import networkx as nx

from ..ir import ops
from ..ir.graph import Graph
from ..ir.loops import analyse_loops

SHAPE_ONLY = ops.having("shape_only")  # masks of lengths, zeros: no parameter moves them


class GradientScope:
    def __init__(self, graph: Graph, loss: int):
        self.loops = analyse_loops(graph)
        self.in_loop = {node: (loop, place, i) for loop in self.loops.values()
                        for i, iteration in enumerate(loop.iterations)
                        for place, node in iteration.items()}
        self.param_dependent = set(graph.params.values())  # nodes a parameter moves
        for node in graph.topological_order():
            if graph[node].op not in SHAPE_ONLY and \
                    any(arg in self.param_dependent for arg in graph.args(node)):
                self.param_dependent.add(node)
        reaching_loss = self.param_dependent & (nx.ancestors(graph.nx, loss) | {loss})
        self.param_dependent_places = {self.place_key(n) for n in self.param_dependent
                                       if n in self.in_loop}
        places = {self.place_key(n) for n in reaching_loss if n in self.in_loop}
        # a place that needs gradients at one step gets them at every step, so that every
        # step of the backward loop is alike (at the first steps, some are zero)
        self.needs_gradient = reaching_loss | {n for n in self.in_loop
                                               if self.place_key(n) in places}
        self.loops_started_by = defaultdict(list)  # init node -> [(loop, carried place)]
        for loop in self.loops.values():
            for place, start in loop.carried.items():
                self.loops_started_by[start].append((loop, place))

    def place_key(self, node: int) -> tuple:
        """(block name, place) of a node in a loop: the same at every iteration."""
        loop, place, _ = self.in_loop[node]
        return loop.block.name, place
