"""Remove nodes no output depends on.

Safe always: a node that no output reaches computes nothing anyone sees. Inputs and
parameters stay (they are the model's interface) even when unused. A loop body stays
alike at every step: a place of a block is kept at every step if it is live at one
(the carry that the last backward step computes for nobody, say).
"""

from __future__ import annotations

from ..ir.graph import Graph
from .places import LoopBodies


def eliminate_dead_nodes(graph: Graph) -> bool:
    bodies = LoopBodies(graph)
    live: set[int] = set()
    expanded: set[tuple] = set()  # places whose every step is on the stack already
    stack = list(set(graph.outputs.values()))
    while stack:  # one walk back over arguments; a live place makes all its steps live
        node = stack.pop()
        if node in live:
            continue
        live.add(node)
        stack.extend(arg for arg in graph.args(node) if arg not in live)
        key = bodies.key(node)
        if key is not None and key not in expanded:
            expanded.add(key)
            stack.extend(n for n in bodies.steps_of(node) if n not in live)
    keep = live | set(graph.inputs.values()) | set(graph.params.values())
    dead = [node for node in graph.nx.nodes if node not in keep]
    for node in dead:
        graph.remove(node)
    return bool(dead)
