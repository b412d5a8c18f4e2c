"""Remove nodes no output depends on.

Safe always: a node that no output reaches computes nothing anyone sees. Inputs and
parameters stay (they are the model's interface) even when unused. A loop body stays
alike at every step: a place of a block is kept at every step if it is live at one
(the carry that the last backward step computes for nobody, say).
"""

from __future__ import annotations

import networkx as nx

from ..graph import Graph


def eliminate_dead_nodes(graph: Graph) -> bool:
    places: dict[tuple, list[int]] = {}
    for node, data in graph.nx.nodes(data=True):
        if data["step"] is not None:
            places.setdefault((data["block"], data["place"]), []).append(node)
    live: set[int] = set()
    frontier = set(graph.outputs.values())
    while frontier:
        reached = set(frontier)
        for node in frontier:
            reached |= nx.ancestors(graph.nx, node)
        reached -= live
        live |= reached
        frontier = set()
        for node in reached:
            data = graph[node]
            if data["step"] is not None:
                frontier |= set(places[(data["block"], data["place"])]) - live
    keep = live | set(graph.inputs.values()) | set(graph.params.values())
    dead = [node for node in graph.nx.nodes if node not in keep]
    for node in dead:
        graph.remove(node)
    return bool(dead)
