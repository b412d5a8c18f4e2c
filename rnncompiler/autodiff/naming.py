"""What gradient nodes are called, for display (``inspect``, the generated code): ``dh`` for
the cotangent of ``h``, ``dh@1`` for its lane 1 under a window, ``dh+1`` for a partial sum
of it, ``dW_hh`` for the running sum of a weight's gradient. A node's place is also its
identity within a block and step, so names that would clash are told apart."""

from __future__ import annotations

from ..ir.graph import Graph
from ..ir.ops import OP
from .truncation import Truncation


class Naming:
    def __init__(self, graph: Graph, truncation: Truncation):
        self.graph = graph
        self.truncation = truncation
        self.renamed: set = set()  # nodes renamed after what they are a gradient of
        self.running_sum_names: dict = {}  # (target, grad block, lane) -> its place

    def suffix(self, lane: int) -> str:
        """What tells the lanes of a window apart; nothing with a single lane."""
        return f"@{lane}" if self.truncation.lanes > 1 else ""

    def named(self, node: int) -> bool:
        return node in self.renamed or self.graph[node].op in (OP.zeros, OP.zeros_shaped)

    def sum_nodes(self, parts: list, where: dict, place: str) -> int:
        """parts[0] + parts[1] + ...; a single part made at the same step takes the name."""
        total = parts[0]
        data = self.graph[total]
        if len(parts) == 1 and data.step == where.get("step") \
                and data.block == where.get("block") and not self.named(total):
            self.graph.update(total, place=place)
            self.renamed.add(total)
        for i, part in enumerate(parts[1:], start=1):
            name = place if i == len(parts) - 1 else f"{place}+{i}"
            total = self.graph.add(OP.add, [total, part], place=name, **where)
        return total

    def running_sum_name(self, target: int, where: dict, lane: int) -> str:
        """The name of the running sum of ``target``'s gradient in a backward loop: a
        parameter of the loop's own layer by its short name (``W_hh``), anything else
        qualified by where it lives (``words.W`` of a dense layer fed back, ``E1.h`` of the
        encoder whose final state a one-step decoder reads). Unique in the loop: places
        are identities, and two sums sharing one would be merged."""
        key = (target, where["block"], lane)
        if key not in self.running_sum_names:
            data = self.graph[target]
            if data.op == OP.param:
                name = data.attrs["name"]
                if data.layer == where["layer"]:
                    name = name.rsplit(".", 1)[-1]
            else:
                owner = data.block or data.layer
                own = data.place or data.attrs.get("name") or data.op
                name = f"{owner}.{own}{self.suffix(lane)}" if owner else \
                    f"{own}{self.suffix(lane)}"
            taken = {(block, place) for (_, block, _), place in self.running_sum_names.items()}
            unique, n = name, 1
            while (where["block"], unique) in taken:
                n += 1
                unique = f"{name}#{n}"
            self.running_sum_names[key] = unique
        return self.running_sum_names[key]
