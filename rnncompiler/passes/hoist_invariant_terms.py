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

from ..ir.graph import Graph
from ..ir.ops import OP
from .places import LoopBodies


def hoist_invariant_terms(graph: Graph) -> bool:
    found = {}
    for nodes in LoopBodies(graph).places.values():  # a place is hoisted at every step or not
        matches = [_invariant_term(graph, node) for node in nodes]
        if all(matches):
            found.update(zip(nodes, matches))
    biased = _biased_sequences(graph, found)
    steps: dict[tuple, int] = {}  # (biased sequence, step) -> that step of it
    changed = False
    for node, (term, _, other, inner) in found.items():
        sequence, window = _read_of(graph, term)
        if sequence not in biased:
            continue  # read otherwise too, or its terms do not tile it: left as it is
        data = graph[node]
        where = graph[node].where
        take = term if window is None else graph.args(term)[0]
        key = (biased[sequence], data.step)
        if key not in steps:
            steps[key] = graph.add(OP.take_step, [biased[sequence]], index=data.step,
                                   place=graph[take].place, **where)
        total = steps[key]
        if window is not None:
            total = graph.add(OP.slice_features, [total], start=window[0], stop=window[1],
                              place=graph[term].place, **where)
        if other is not None:
            total = graph.add(OP.add, [total, other], place=data.place, **where)
        else:
            graph.update(total, place=data.place)
        if data.comment is not None:
            graph.update(total, comment=data.comment)
        graph.replace_uses(node, total)
        for dead in (node, inner, term, take):  # the sum, and the old step nothing reads now
            if dead is not None and dead in graph.nx and (dead == node or not graph.users(dead)):
                graph.remove(dead)
        changed = True
    return changed


def _biased_sequences(graph: Graph, found: dict) -> dict:
    """sequence -> ``sequence + [b_1, ..., b_k]`` for the sequences read only by the terms
    found, each adding one bias to its slice (zeros where no slice reads): one addition
    over the whole sequence (NumPy's in place, on the product it follows), never a copy of
    each slice biased apart."""
    windows: dict[int, dict] = {}  # sequence -> {(start, stop): {invariants}}
    terms: dict[int, set] = {}  # sequence -> the terms found reading it, or None: read otherwise
    for node, (term, invariant, _, inner) in found.items():
        sequence, window = _read_of(graph, term)
        width = graph[sequence].shape[-1]
        windows.setdefault(sequence, {}).setdefault(window or (0, width), set()).add(invariant)
        alone = graph.users(term) == [inner if inner is not None else node]
        terms.setdefault(sequence, set()).add(term if alone else None)
    biased = {}
    for sequence, by_window in windows.items():
        steps = graph.users(sequence)
        read = {r for step in steps for r in ([step] if step in terms[sequence]
                                                else graph.users(step))}
        ordered = sorted(by_window)
        if read != terms[sequence] or any(graph[step].op != OP.take_step for step in steps) \
                or any(len(invariants) != 1 for invariants in by_window.values()) \
                or any(a[1] > b[0] for a, b in itertools.pairwise(ordered)) \
                or any(graph[next(iter(by_window[w]))].shape != (w[1] - w[0],)
                       for w in ordered):
            continue
        biased[sequence] = graph.add(OP.add, [sequence, _bias(graph, sequence, by_window)],
                                     layer=graph[sequence].layer,
                                     place=f"{graph[sequence].place or 'sequence'}.biased")
    return biased


def _bias(graph: Graph, sequence: int, by_window: dict) -> int:
    """One bias vector over the sequence's features: each window's, zeros between."""
    width = graph[sequence].shape[-1]
    if list(by_window) == [(0, width)]:
        return next(iter(by_window[(0, width)]))
    parts, at = [], 0
    for (start, stop), (invariant,) in sorted(by_window.items()):
        if start > at:
            parts.append(graph.add(OP.zeros_shaped, shape=(start - at,), dtype=graph.dtype))
        # a bias that is itself joined (b_r, b_z): its parts, so the vector is one join
        parts += graph.args(invariant) if graph[invariant].op == OP.concat else [invariant]
        at = stop
    if at < width:
        parts.append(graph.add(OP.zeros_shaped, shape=(width - at,), dtype=graph.dtype))
    return graph.add(OP.concat, parts, layer=graph[sequence].layer,
                     place=f"{graph[sequence].place or 'sequence'}.bias")


def _read_of(graph: Graph, term: int):
    """(sequence, (start, stop) or None) that the per-step ``term`` reads: ``s[t]`` or a
    slice of it, ``s[t][start:stop]``; None if it reads something else."""
    data = graph[term]
    window = None
    if data.op == OP.slice_features:
        window = (data.attrs["start"], data.attrs["stop"])
        term = graph.args(term)[0]
        data = graph[term]
    if data.op != OP.take_step or data.step is None:
        return None
    (sequence,) = graph.args(term)
    if graph[sequence].step is not None:
        return None
    return sequence, window


def _invariant_term(graph: Graph, node: int):
    """``(s[t] + other) + invariant`` or ``s[t] + invariant`` (``s[t]`` possibly a slice
    of it) with ``s`` computed before the loop and the invariant the same for every example
    (a bias): (the term, invariant, other, inner sum)."""
    data = graph[node]
    if data.op != OP.add:
        return None
    for first, invariant in (graph.args(node), graph.args(node)[::-1]):
        if graph[invariant].step is not None or graph[invariant].batched:
            continue  # (a vector of each example's, fed at every step, is no bias to hoist)
        if _reads_at(graph, first, data) and graph[first].shape == data.shape:
            return first, invariant, None, None
        if graph[first].op != OP.add or graph[first].step != data.step \
                or len(graph.users(first)) != 1 or graph[first].block != data.block:
            continue
        for term, other in (graph.args(first), graph.args(first)[::-1]):
            if _reads_at(graph, term, data) and graph[first].shape == data.shape:
                return term, invariant, other, first
    return None


def _reads_at(graph: Graph, term: int, data: dict) -> bool:
    """Whether ``term`` reads, at the sum's own step, a sequence computed before the loop."""
    return graph[term].step == data.step and graph[term].block == data.block \
        and _read_of(graph, term) is not None
