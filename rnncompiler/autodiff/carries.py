"""The carries of the backward loop: what each step sends back to the previous step's
state, summed over that state's readers in the step.

Every step's cotangent of a recurrent state is ``carry + in-step contributions``, where the
carry into the last step is zeros (nothing comes back from after the end), so every step
of the backward loop has the same shape of graph. Under ``{chunk: k}`` the carry is cut
where it crosses a chunk boundary."""

from __future__ import annotations

from collections import defaultdict

from ..ir.graph import Graph
from .naming import Naming
from .placement import Placement
from .scope import GradientScope
from .truncation import Truncation


class StateCarries:
    def __init__(self, graph: Graph, scope: GradientScope, truncation: Truncation,
                 placement: Placement, naming: Naming):
        self.graph = graph
        self.scope = scope
        self.truncation = truncation
        self.placement = placement
        self.naming = naming
        self.pending = defaultdict(list)  # (block, iteration, place, lane) -> contributions
        self.sums: dict = {}  # the same key -> their sum, once asked for

    def send(self, block: str, i: int, place: str, lane: int, value: int) -> None:
        """Iteration ``i`` sends ``value`` back to the previous step's ``place``."""
        self.pending[(block, i, place, lane)].append(value)

    def any_sent(self, block: str, i: int, place: str, lane: int) -> bool:
        key = (block, i, place, lane)
        return key in self.pending or key in self.sums

    def carry(self, block: str, i: int, place: str, lane: int) -> int:
        """What iteration ``i`` sends back to the previous step's ``place``."""
        key = (block, i, place, lane)
        if key not in self.sums and key not in self.pending:
            # the place's reader in the next step needs no gradient (a fed-back output read
            # by states the loss does not see): nothing comes back, at any step alike
            return self.placement.zeros_like(self.scope.loops[block].iterations[i][place])
        if key not in self.sums:
            loop = self.scope.loops[block]
            where = self.placement.where_in(loop, i)
            name = f"carry_{place}{self.naming.suffix(lane)}"
            total = self.naming.sum_nodes(self.pending.pop(key), where, name)
            self.sums[key] = self.truncation.cut(self.graph, total, name, where, loop.block)
        return self.sums[key]

    def finish(self) -> None:
        """Sum what no one asked for: the carries into starts that need no gradient, so
        that every step stays alike."""
        for key in list(self.pending):
            self.carry(*key)
