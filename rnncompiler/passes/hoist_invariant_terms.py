"""Hoist the terms that every step adds alike (biases) into a sequence computed before the
loop: ``(W x[t] + U h) + b`` becomes ``(W x + b)[t] + U h`` and ``(W x)[t] + b`` becomes
``(W x + b)[t]``: one addition over all steps instead of one a step. Where the steps read
slices of the sequence, each adding its own bias (a GRU's r and z together, n apart), the
biases are joined into one vector, added to the whole sequence once. Runs after
``fuse_elementwise``, so that the sums it joined over adjacent slices (r and z) stay one
sum. The sum's order changes: values agree to rounding.
"""

from __future__ import annotations

import itertools

from ..graph import Graph
from .places import places


def hoist_invariant_terms(graph: Graph) -> bool:
    found = {}
    for nodes in places(graph).values():
        matches = [_invariant_term(graph, node) for node in nodes]
        if all(matches):
            found.update(zip(nodes, matches))
    biased_whole = _biased_wholes(graph, found)
    hoisted: dict[tuple, int] = {}
    steps: dict[tuple, int] = {}  # (biased whole, step) -> that step of it
    changed = False
    for node, (term, invariant, other, inner) in found.items():
        sequence, window = _read_of(graph, term)
        if window is not None and sequence not in biased_whole:
            continue  # slices of a sequence that cannot be biased whole: left as they are
        data = graph[node]
        where = {k: data[k] for k in ("step", "layer", "block")}
        if window is None:
            source = hoisted.setdefault((sequence, invariant), graph.add(
                "add", [sequence, invariant], layer=data["layer"],
                place=f"{graph[sequence]['place'] or 'sequence'}.biased"))
        else:
            source = biased_whole[sequence]
        # the term is read at this step only by this sum: it goes; else it stays for others
        single = len(graph.users(term)) == 1
        take = term if window is None else graph.args(term)[0]
        if (source, data["step"]) not in steps:
            name = graph[take]["place"] + ("" if window is not None or (single and other
                                                                        is not None) else ".biased")
            steps[(source, data["step"])] = graph.add("take_step", [source], index=data["step"],
                                                      place=name, **where)
        total = steps[(source, data["step"])]
        if window is not None:
            total = graph.add("slice_features", [total], start=window[0], stop=window[1],
                              place=graph[term]["place"], **where)
        if single:
            graph.remove(term)
            if take != term and not graph.users(take):
                graph.remove(take)
        if other is not None:
            total = graph.add("add", [total, other], place=data["place"], **where)
        elif window is None:
            graph[total]["place"] = data["place"]
        if "comment" in data:
            graph[total]["comment"] = data["comment"]
        graph.replace_uses(node, total)
        graph.remove(node)
        if inner is not None:
            graph.remove(inner)
        changed = True
    return changed


def _biased_wholes(graph: Graph, found: dict) -> dict:
    """sequence -> ``sequence + [b_1, ..., b_k]`` for the sequences whose steps are read only
    as slices that each add one bias (zeros where no slice reads): one addition over the
    whole sequence, which NumPy does in place on the product it follows, where biasing
    each slice apart would copy the slices into new arrays."""
    by_sequence: dict[int, dict] = {}
    terms = {match[0] for match in found.values()}
    for term, invariant, _, _ in found.values():
        sequence, window = _read_of(graph, term)
        if window is not None:
            by_sequence.setdefault(sequence, {}).setdefault(window, set()).add(invariant)
    wholes = {}
    for sequence, windows in by_sequence.items():
        readers = [v for u in graph.users(sequence) for v in graph.users(u)]
        width = graph[sequence]["shape"][-1]
        ordered = sorted(windows)
        if any(graph[u]["op"] != "take_step" for u in graph.users(sequence)) \
                or any(v not in terms for v in readers) \
                or any(len(invariants) != 1 for invariants in windows.values()) \
                or any(a[1] > b[0] for a, b in itertools.pairwise(ordered)):
            continue
        parts, at = [], 0
        for start, stop in ordered:
            (invariant,) = windows[(start, stop)]
            if graph[invariant]["shape"] != (stop - start,):
                break
            if start > at:
                parts.append(graph.add("zeros_shaped", shape=(start - at,), dtype=graph.dtype))
            # a bias that is itself joined (b_r, b_z): its parts, so the vector is one join
            parts += graph.args(invariant) if graph[invariant]["op"] == "concat" else [invariant]
            at = stop
        else:
            if at < width:
                parts.append(graph.add("zeros_shaped", shape=(width - at,), dtype=graph.dtype))
            data = graph[sequence]
            bias = graph.add("concat", parts, layer=data["layer"],
                             place=f"{data['place'] or 'sequence'}.bias")
            wholes[sequence] = graph.add("add", [sequence, bias], layer=data["layer"],
                                         place=f"{data['place'] or 'sequence'}.biased")
    return wholes


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
