"""Hoist the terms that every step adds alike (biases) into a sequence computed before the
loop: ``(W x[t] + U h) + b`` becomes ``(W x + b)[t] + U h`` and ``(W x)[t] + b`` becomes
``(W x + b)[t]``: one addition over all steps instead of one a step. Where a step reads a
slice of the sequence (a GRU's n apart from its r and z), that slice of every step is
biased at once. Runs after ``fuse_elementwise``, so that the sums it joined over adjacent
slices (r and z) stay one sum. The sum's order changes: values agree to rounding.
"""

from __future__ import annotations

from ..graph import Graph
from .places import places


def hoist_invariant_terms(graph: Graph) -> bool:
    found = {}
    for nodes in places(graph).values():
        matches = [_invariant_term(graph, node) for node in nodes]
        if all(matches):
            found.update(zip(nodes, matches))
    hoisted: dict[tuple, int] = {}
    for node, (term, invariant, other, inner) in found.items():
        data = graph[node]
        where = {k: data[k] for k in ("step", "layer", "block")}
        step_node, (sequence, window) = term, _read_of(graph, term)
        key = (sequence, window, invariant)
        if key not in hoisted:
            whole = sequence
            if window is not None:  # the slice of every step at once
                whole = graph.add("slice_features", [sequence], start=window[0],
                                  stop=window[1], layer=data["layer"],
                                  place=f"{graph[sequence]['place'] or 'sequence'}.part")
            hoisted[key] = graph.add(
                "add", [whole, invariant], layer=data["layer"],
                place=f"{graph[sequence]['place'] or 'sequence'}.biased")
        # the term is read at this step only by this sum: it goes; else it stays for others
        single = len(graph.users(step_node)) == 1
        name = graph[step_node]["place"] + ("" if single and other is not None else ".biased")
        total = graph.add("take_step", [hoisted[key]], index=data["step"], place=name, **where)
        if single:
            take = graph.args(step_node)[0] if window is not None else None
            graph.remove(step_node)
            if take is not None and not graph.users(take):
                graph.remove(take)
        if other is not None:
            total = graph.add("add", [total, other], place=data["place"], **where)
        else:
            graph[total]["place"] = data["place"]
        if "comment" in data:
            graph[total]["comment"] = data["comment"]
        graph.replace_uses(node, total)
        graph.remove(node)
        if inner is not None:
            graph.remove(inner)
    return bool(found)


def _read_of(graph: Graph, term: int):
    """(sequence, (start, stop) or None) that the per-step ``term`` reads: ``s[t]`` or a
    slice of it, ``s[t][start:stop]``; None if it reads something else."""
    data = graph[term]
    window = None
    if data["op"] == "slice_features":
        window = (data["attrs"]["start"], data["attrs"]["stop"])
        term = graph.args(term)[0]
        data = graph[term]
    if data["op"] != "take_step" or data["step"] is None:
        return None
    (sequence,) = graph.args(term)
    if graph[sequence]["step"] is not None:
        return None
    return sequence, window


def _invariant_term(graph: Graph, node: int):
    """``(s[t] + other) + invariant`` or ``s[t] + invariant`` (``s[t]`` possibly a slice
    of it) with ``s`` computed before the loop: (the term, invariant, other, inner sum)."""
    data = graph[node]
    if data["op"] != "add":
        return None
    for first, invariant in (graph.args(node), graph.args(node)[::-1]):
        if graph[invariant]["step"] is not None:
            continue
        if _reads_at(graph, first, data) and graph[first]["shape"] == data["shape"]:
            return first, invariant, None, None
        if graph[first]["op"] != "add" or graph[first]["step"] != data["step"] \
                or len(graph.users(first)) != 1 or graph[first]["block"] != data["block"]:
            continue
        for term, other in (graph.args(first), graph.args(first)[::-1]):
            if _reads_at(graph, term, data) and graph[first]["shape"] == data["shape"]:
                return term, invariant, other, first
    return None


def _reads_at(graph: Graph, term: int, data: dict) -> bool:
    """Whether ``term`` reads, at the sum's own step, a sequence computed before the loop."""
    return graph[term]["step"] == data["step"] and graph[term]["block"] == data["block"] \
        and _read_of(graph, term) is not None
