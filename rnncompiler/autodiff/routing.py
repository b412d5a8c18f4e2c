"""Cotangents: where each contribution goes, and how a node's whole cotangent is made.

Out of a node (``route``), a contribution to an argument goes
- to a loop's state from the next step: into the carry, one lane up;
- to a value a loop reads at every step: into its running sum;
- to a parameter from outside every loop: into the parameter's outside terms;
- to a loop's last value from outside (``route_final``): into a whole-sequence cotangent,
  zero but at that step, which every step of the backward loop reads alike;
- anywhere else: into the argument's own list, per lane.

Into a node (``total``) come its carry, the whole-sequence cotangents read back one step
at a time, the carries and running sums of the loops that start from it, and its own
list; with nothing there, zeros."""

from __future__ import annotations

from collections import defaultdict

from ..ir.graph import Graph
from ..ir.ops import OP
from .carries import StateCarries
from .naming import Naming
from .placement import Placement
from .running_sums import RunningSums
from .scope import GradientScope
from .truncation import Truncation


class Cotangents:
    def __init__(self, graph: Graph, scope: GradientScope, truncation: Truncation,
                 placement: Placement, naming: Naming, carries: StateCarries,
                 running_sums: RunningSums):
        self.graph = graph
        self.scope = scope
        self.truncation = truncation
        self.placement = placement
        self.naming = naming
        self.carries = carries
        self.running_sums = running_sums
        self.contributions = defaultdict(list)  # (node, lane) -> cotangent contributions
        self.lanes_seen = defaultdict(set)  # node -> lanes with contributions
        self.whole = defaultdict(list)  # (block, place, lane) -> whole-sequence cotangents
        self.step_pieces = defaultdict(lambda: defaultdict(list))  # (sequence, lane) -> {t: nodes}

    # --- bookkeeping --------------------------------------------------------------------
    def add(self, node: int, lane: int, value: int) -> None:
        self.contributions[(node, lane)].append(value)
        self.lanes_seen[node].add(lane)

    def take(self, node: int, lane: int) -> list:
        """``node``'s own contributions in ``lane``, handed over once."""
        return self.contributions.pop((node, lane), [])

    def add_step_piece(self, sequence: int, lane: int, t: int, value: int) -> None:
        """A cotangent for step ``t`` alone of a sequence made outside loops."""
        self.step_pieces[(sequence, lane)][t].append(value)
        self.lanes_seen[sequence].add(lane)

    def take_step_pieces(self, sequence: int, lane: int) -> dict:
        return self.step_pieces.pop((sequence, lane), {})

    def lanes_of(self, node: int) -> list:
        """The lanes ``node``'s cotangent runs in: a loop state's in every lane at every
        step (zeros where empty), so that the steps stay alike; else those reached."""
        in_loop = self.scope.in_loop
        if node in in_loop and in_loop[node][0].carried:
            return list(range(self.truncation.lanes))
        return sorted(self.lanes_seen[node])

    # --- into a node --------------------------------------------------------------------
    def total(self, node: int, lane: int) -> int:
        """The whole cotangent of ``node`` in ``lane``: carry, sequence parts, the rest."""
        graph, in_loop = self.graph, self.scope.in_loop
        parts, where = [], self.placement.where(node)
        for loop, place in self.scope.loops_started_by.get(node, []):
            if self.carries.any_sent(loop.block.name, 0, place, lane):
                carry = self.carries.carry(loop.block.name, 0, place, lane)
                if node in in_loop:  # another loop's last value: like any final use
                    self.route_final(node, carry, lane)
                else:
                    parts.append(carry)
        # what loops summed over their steps for a value they read at every step (a loop
        # of one step reads its start as such a value): from outside, like a final use
        for running in self.running_sums.of(node, lane):
            if node in in_loop:
                self.route_final(node, running, lane)
            else:
                parts.append(running)
        if node in in_loop:
            loop, place, i = in_loop[node]
            if place in loop.carried and self.truncation.has_carry(lane):
                if i == len(loop.iterations) - 1:  # nothing comes back from after the end
                    parts.append(self.placement.zeros_like(node))
                else:
                    parts.append(self.carries.carry(loop.block.name, i + 1, place, lane))
            for whole in self.whole_sum(loop.block.name, place, lane):
                parts.append(graph.add(OP.take_step, [whole], index=where["step"],
                                       place=f"d{place}{self.naming.suffix(lane)}.seq",
                                       **where))
        parts += self.take(node, lane)
        if not parts:
            parts = [self.placement.zeros_like(node)]
        name = graph[node].place or graph[node].op
        total = self.naming.sum_nodes(parts, where, f"d{name}{self.naming.suffix(lane)}")
        if lane == 0:
            graph.update(node, cotangent=total)  # ∂L/∂node, for inspection (grad flow)
        return total

    def whole_sum(self, block: str, place: str, lane: int) -> list:
        """The whole-sequence cotangents of a block's place, summed outside the loop."""
        parts = self.whole.get((block, place, lane), [])
        if len(parts) > 1:
            self.whole[(block, place, lane)] = parts = [
                self.naming.sum_nodes(parts, {}, f"d{place}")]
        return parts

    # --- out of a node ------------------------------------------------------------------
    def needs(self, node: int, position: int, arg: int, lane: int) -> bool:
        """Whether argument ``position`` of ``node`` takes a contribution in ``lane``."""
        if node not in self.scope.in_loop:
            return arg in self.scope.param_dependent
        loop, place, _ = self.scope.in_loop[node]
        kind = loop.args[place][position]
        if kind.kind == "invariant":
            return arg in self.scope.param_dependent
        if kind.kind == "carried" and self.truncation.next_lane(lane) is None:
            return False
        return (loop.block.name, kind.ref) in self.scope.param_dependent_places

    def route(self, node: int, position: int, arg: int, value: int, lane: int) -> None:
        """Send a contribution to ``arg``'s cotangent, wherever that lives."""
        if node in self.scope.in_loop:
            loop, place, i = self.scope.in_loop[node]
            kind = loop.args[place][position]
            if kind.kind == "carried":
                later = self.truncation.next_lane(lane)
                self.carries.send(loop.block.name, i, kind.ref, later, value)
                if i == 0:
                    self.lanes_seen[arg].add(later)
                return None
            if kind.kind == "invariant":  # read at every step: summed over the steps
                self.running_sums.add(arg, value, node, lane)
                if self.graph[arg].op != OP.param:  # its own lane, summed into its total
                    self.lanes_seen[arg].add(lane)
                return None
        elif self.graph[arg].op == OP.param:
            return self.running_sums.add_outside(arg, value)
        elif arg in self.scope.in_loop:  # an outside node reads a loop's last value
            return self.route_final(arg, value, lane)
        return self.add(arg, lane, value)

    def route_final(self, node: int, value: int, lane: int) -> None:
        """A cotangent from outside for a loop's last value: a whole sequence that is zero
        but at that step, so that every step of the backward loop reads it alike."""
        block, place = self.scope.place_key(node)
        loop = self.scope.loops[block]
        whole = self.graph.add(OP.scatter_step, [value], index=self.graph[node].step,
                               steps=loop.block.steps, dynamic=loop.block.follows_steps,
                               layer=self.graph[node].layer, place=f"d{block}_{place}_last")
        self.add_whole(block, place, lane, whole)

    def add_whole(self, block: str, place: str, lane: int, whole: int) -> None:
        """A cotangent for a place at every step of a block, as one whole sequence."""
        self.whole[(block, place, lane)].append(whole)
        for iteration in self.scope.loops[block].iterations:
            self.lanes_seen[iteration[place]].add(lane)
