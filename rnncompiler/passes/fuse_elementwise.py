"""Fuse elementwise ops across gates: the same elementwise op applied to adjacent slices
of one value (an LSTM's ``sigmoid`` of the i, f and o blocks of its fused gate product)
becomes one op on the whole range, whose slices replace the originals.

After ``fuse_gate_products`` a step computes its gates as slices of one product; every
gate then ran its own ``add``, ``+ b`` and activation, one small array each. Here those
become one ``add`` over all gates, one ``+ [b_i; b_f; ...]`` (the biases joined once,
before the loop) and one activation per kind of activation — the fewer, larger
operations that make a NumPy loop body fast, and the same arithmetic, so the same
values bit for bit.

An op's arguments, member by member, must be: slices of one value at adjacent ranges
(in the same order), or one and the same node (a constant), or values computed before
any loop, which are joined once. For loops, places are fused only where the same places
fuse alike at every step.
"""

from __future__ import annotations

from itertools import pairwise

from ..ir import ops
from ..ir.graph import Graph
from ..ir.ops import OP
from .places import LoopBodies, joined_name, value_name

ELEMENTWISE = ops.having("elementwise")


def fuse_elementwise(graph: Graph) -> bool:
    bodies = LoopBodies(graph)
    runs = _runs(graph)
    # places fuse in a loop where the same places fuse alike at every step
    alike = bodies.at_every_step({run[0]: tuple(graph[n].place for n in run)
                                  for run in runs})
    accepted = [run for run in runs if run[0] in alike]
    joined: dict[tuple, int] = {}  # invariants joined once, shared by every step
    taken = set(bodies.places)  # (block, place) before fusing: a cell's own i_f is no i + f
    for run in accepted:
        _fuse(graph, run, joined, taken)
    return bool(accepted) | _slice_where_used(graph)


def _slice_where_used(graph: Graph) -> bool:
    """A backward loop that reads the forward's gates reads the joined value (which the
    forward loop then saves once, rather than each gate) and slices it itself."""
    changed = False
    for nodes in LoopBodies(graph).places.values():
        first = graph[nodes[0]]
        if first.op != OP.slice_features or graph[graph.args(nodes[0])[0]].step is None:
            continue
        readers = [sorted((graph[u].block, graph[u].place) for u in graph.users(n)
                          if graph[u].block != first.block
                          and graph[u].step == graph[n].step)
                   for n in nodes]
        if not readers[0] or any(r != readers[0] for r in readers):
            continue
        for node in nodes:
            views: dict[str, int] = {}
            data = graph[node]
            for user in graph.users(node):
                other = graph[user]
                if other.block == data.block or other.step != data.step:
                    continue
                if other.block not in views:
                    # a loop may read the slices of several others' (a bidirectional layer's
                    # two directions both have a dx): another layer's are named by block
                    owner = "" if other.layer == data.layer else f"{data.block}."
                    views[other.block] = graph.add(
                        OP.slice_features, graph.args(node), **data.attrs,
                        step=data.step, layer=other.layer, block=other.block,
                        place=f"{owner}{data.place}.view")
                graph.set_args(user, [views[other.block] if a == node else a
                                      for a in graph.args(user)])
            if not graph.users(node) and node not in graph.outputs.values():
                graph.remove(node)
        changed = True
    return changed


def _runs(graph: Graph) -> list[list[int]]:
    """Groups of nodes (in range order) that one op over a joined range can replace."""
    groups: dict[tuple, list[int]] = {}
    for node, data in graph.items():
        if data.op not in ELEMENTWISE:
            continue
        args = graph.args(node)
        sliced = [i for i, a in enumerate(args) if graph[a].op == OP.slice_features]
        if not sliced:
            continue
        position = sliced[0]
        source = graph.args(args[position])[0]
        key = (data.op, data.block, data.step, position, source, data.batched,
               len(data.shape))
        groups.setdefault(key, []).append(node)
    runs = []
    for (_, _, _, position, _, _, _), members in groups.items():
        members.sort(key=lambda n: _range(graph, graph.args(n)[position]))
        run = [members[0]]
        for member in members[1:]:
            previous = _range(graph, graph.args(run[-1])[position])
            if _range(graph, graph.args(member)[position])[0] == previous[1] \
                    and _joinable(graph, [*run, member]):
                run.append(member)
                continue
            if len(run) > 1:
                runs.append(run)
            run = [member]
        if len(run) > 1:
            runs.append(run)
    return runs


def _range(graph: Graph, node: int) -> tuple[int, int]:
    attrs = graph[node].attrs
    return attrs["start"], attrs["stop"]


def _joinable(graph: Graph, run: list[int]) -> bool:
    """Whether every argument position of the run can be joined into one argument."""
    for position in range(len(graph.args(run[0]))):
        args = [graph.args(n)[position] for n in run]
        if all(a == args[0] for a in args) and graph[args[0]].shape == ():
            continue  # a scalar shared by all
        if _adjacent_slices(graph, args) is not None:
            continue
        if not all(graph[a].step is None and not graph[a].batched
                   and graph[a].shape == graph[n].shape for a, n in zip(args, run)):
            return False
    return True


def _adjacent_slices(graph: Graph, args: list[int]) -> tuple | None:
    """(source, start, stop) if ``args`` are slices of one value at adjacent ranges."""
    if not all(graph[a].op == OP.slice_features for a in args):
        return None
    sources = {graph.args(a)[0] for a in args}
    ranges = [_range(graph, a) for a in args]
    if len(sources) != 1 or any(r[1] != s[0] for r, s in pairwise(ranges)):
        return None
    return sources.pop(), ranges[0][0], ranges[-1][1]


def _fuse(graph: Graph, run: list[int], joined: dict, taken: set) -> None:
    first = graph[run[0]]
    where = graph[run[0]].where
    args = []
    for position in range(len(graph.args(run[0]))):
        members = [graph.args(n)[position] for n in run]
        slices = _adjacent_slices(graph, members)
        if slices is not None:
            source, start, stop = slices
            if (start, stop) == (0, graph[source].shape[-1]):
                args.append(source)
            else:
                args.append(graph.add(OP.slice_features, [source], start=start, stop=stop,
                                      place=f"{first.place}.{position}.in", **where))
        elif all(m == members[0] for m in members):
            args.append(members[0])
        else:
            key = tuple(members)
            if key not in joined:
                joined[key] = graph.add(OP.concat, members, layer=first.layer,
                                        place=joined_name([value_name(graph, m)
                                                           for m in members]))
            args.append(joined[key])
    name = joined_name([graph[n].place for n in run])
    while (first.block, name) in taken:  # the same at every step: taken are the old places
        name += "'"
    fused = graph.add(first.op, args, place=name, **where)
    start = 0
    for node in run:
        size = graph[node].shape[-1]
        if not graph.users(node) and node not in graph.outputs.values():
            graph.remove(node)  # dead already: nothing to slice for
            start += size
            continue
        part = graph.add(OP.slice_features, [fused], start=start, stop=start + size,
                         place=graph[node].place, **where)
        if graph[node].comment is not None:
            graph.update(part, comment=graph[node].comment)
        graph.replace_uses(node, part)
        inputs = graph.args(node)
        graph.remove(node)
        for arg in inputs:  # the slices it read, now read by nobody
            if arg in graph.nx and graph[arg].op == OP.slice_features \
                    and not graph.users(arg):
                graph.remove(arg)
        start += size
