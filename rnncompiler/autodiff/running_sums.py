"""Running sums over the steps, and each parameter's gradient.

A value read at every step of a loop (a weight, a vector fed to every step) gets a
contribution at every step; its gradient is their sum, kept as a running sum that the
backward loop carries — BPTT's weight gradient. A parameter's gradient is its running sums
(one per loop that reads it) plus its uses outside loops."""

from __future__ import annotations

from collections import defaultdict

from ..ir.graph import Graph
from ..ir.ops import OP
from .naming import Naming
from .placement import Placement
from .scope import GradientScope


class RunningSums:
    def __init__(self, graph: Graph, scope: GradientScope, placement: Placement,
                 naming: Naming):
        self.graph = graph
        self.scope = scope
        self.placement = placement
        self.naming = naming
        self.sums: dict = {}  # (target, grad block, lane) -> the running sum so far
        self.terms = defaultdict(int)  # (target, grad block, lane, iteration) -> terms so far
        self.outside = defaultdict(list)  # param -> contributions from outside loops

    def add(self, target: int, value: int, node: int, lane: int) -> None:
        """``value``, from ``node`` in a loop, to the running sum of ``target``'s gradient.
        Parameters sum all lanes together; other values keep their lane."""
        _, _, i = self.scope.in_loop[node]
        where = self.placement.where(node)
        data = self.graph[target]
        lane = 0 if data.op == OP.param else lane
        key = (target, where["block"], lane)
        count = self.terms[key + (i,)]
        self.terms[key + (i,)] += 1
        running = self.sums.get(key)
        if running is None:
            running = self.placement.zeros_like(target)
        short = self.naming.running_sum_name(target, where, lane)
        if count:  # the running sum's last term at this step keeps the plain name
            self.graph.update(running, place=f"d{short}+{count}")
        self.sums[key] = self.graph.add(OP.add, [running, value], place=f"d{short}", **where)

    def add_outside(self, param: int, value: int) -> None:
        """A contribution to ``param``'s gradient from a use outside every loop."""
        self.outside[param].append(value)

    def of(self, target: int, lane: int) -> list:
        """The running sums of ``target``'s gradient in ``lane``, one per loop."""
        return [running for (of, _, at_lane), running in self.sums.items()
                if of == target and at_lane == lane]

    def param_total(self, param: int) -> int | None:
        """``param``'s gradient; None where nothing reaches it."""
        parts = [running for (p, _, _), running in self.sums.items() if p == param]
        parts += self.outside.get(param, [])
        return self.naming.sum_nodes(parts, {}, "grad") if parts else None
