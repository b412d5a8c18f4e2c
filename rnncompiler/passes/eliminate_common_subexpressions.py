"""Eliminate common subexpressions: two nodes with the same op, the same attributes and
the same arguments compute the same value; the later one's uses go to the first.

``a + b`` and ``b + a`` count as the same (IEEE addition and multiplication commute
exactly). Safe always for values; for loops, a place is merged into another only if the
two agree at every step (at a loop's first step two states may both start from zeros
while differing at every other step): where one step disagrees, the place keeps its own
nodes at every step and the search runs again without it.
"""

from __future__ import annotations

from ..ir import ops
from ..ir.graph import Graph
from .places import LoopBodies

COMMUTATIVE = ops.having("commutative")
# each its own value, whatever its attributes: inputs, parameters, and the zeros a loop
# starts from (merged, two states would look alike at the first step, which other passes
# would take for a pattern)
UNIQUE = ops.having("distinct")


def eliminate_common_subexpressions(graph: Graph) -> bool:
    order = graph.evaluation_order()
    bodies = LoopBodies(graph)
    apart: set[tuple] = set()  # places that must keep their own nodes
    while True:
        same = _hash_cons(graph, order, apart)
        accepted, refused = bodies.replacements({n: m for n, m in same.items() if m != n})
        if not refused:
            break
        apart |= refused
    merged = [node for node in order if node in accepted]
    for node in merged:
        graph.substitute(node, accepted[node])
    return bool(merged)


def _hash_cons(graph: Graph, order: list[int], apart: set[tuple]) -> dict[int, int]:
    """node -> the first node computing the same value."""
    same: dict[int, int] = {}
    first: dict[tuple, int] = {}
    for node in order:
        data = graph[node]
        args = [same[a] for a in graph.args(node)]
        if data.op in COMMUTATIVE:
            args.sort()
        key = (data.op, _frozen(data.attrs), tuple(args), data.step, data.block,
               data.batched, data.shape)
        if data.op in UNIQUE or (data.block, data.place) in apart:
            key += (node,)
        same[node] = first.setdefault(key, node)
    return same


def _frozen(value):
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value
