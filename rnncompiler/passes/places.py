"""What passes share: a loop body is the same at every step, so a per-step node may be
rewritten only if the node of its place is rewritten alike at every step.

``LoopBodies`` is the one way a pass asks that: which proposed replacements keep every
loop re-rollable (``replacements``), which rewrites are found at every step of their
loop (``at_every_step``), which nodes of a step may be joined into one so that every
step joins the same places (``grouped_alike``), the nodes of a node's place
(``steps_of``). Underneath,
``places`` lists every place's nodes in run order and ``periodic`` says whether replacing
a place's nodes by given nodes keeps the loop re-rollable (the kinds of argument that
``ir/loops.py`` re-rolls: the same place at the same step, the previous step's value with
a first one from outside, one value from outside, another loop's place at the same step).
"""

from __future__ import annotations

from ..ir.graph import Graph


class LoopBodies:
    """The loop bodies of ``graph`` as they are now (make one per use: it does not follow
    later rewrites)."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.places = places(graph)  # (block, place) -> its nodes, in run order

    def key(self, node: int) -> tuple | None:
        """(block, place) of a per-step node; None outside loops."""
        data = self.graph[node]
        return None if data.step is None else (data.block, data.place)

    def steps_of(self, node: int) -> list[int]:
        """Every node of a per-step node's place (``[node]`` outside loops)."""
        key = self.key(node)
        return [node] if key is None else self.places[key]

    def replacements(self, proposed: dict[int, int]) -> tuple[dict[int, int], set[tuple]]:
        """Of ``proposed`` (node -> the node to take its place), those that keep every loop
        re-rollable, and the places refused: a place is replaced at every step, alike, or
        not at all; a node outside loops only by a node outside loops."""
        graph, accepted, refused = self.graph, {}, set()
        for key, nodes in self.places.items():
            if any(n in proposed for n in nodes):
                targets = [proposed.get(n) for n in nodes]
                if periodic(graph, nodes, targets, self.places):
                    accepted.update(zip(nodes, targets))
                else:
                    refused.add(key)
        for node, target in proposed.items():
            if graph[node].step is None and graph[target].step is None:
                accepted[node] = target
        return accepted, refused

    def at_every_step(self, found: dict[int, object]) -> set[int]:
        """Of the per-step nodes ``found`` with a pattern (node -> what was found there,
        comparable between steps), those whose block has the same find at every step;
        nodes outside loops always."""
        graph = self.graph
        steps = {block: len(nodes) for (block, _), nodes in self.places.items()}
        counts: dict[tuple, set] = {}
        for node, pattern in found.items():
            if graph[node].step is not None:
                counts.setdefault((graph[node].block, pattern), set()).add(node)
        return {node for node, pattern in found.items() if graph[node].step is None
                or len(counts[(graph[node].block, pattern)]) == steps[graph[node].block]}


    def grouped_alike(self, groups: dict[tuple, list[int]]) -> dict[tuple, list[int]]:
        """Groups of per-step nodes to be joined, keyed ``(block, step, *rest)``, split so
        that every step of a loop joins the same places: a place goes with the places it
        is grouped with at every step (the key gains that set)."""
        graph = self.graph
        together: dict[tuple, frozenset] = {}  # (block, place) -> those always with it
        for (block, *_), members in groups.items():
            names = frozenset(graph[m].place for m in members)
            for name in names:
                together[(block, name)] = together.get((block, name), names) & names
        split: dict[tuple, list[int]] = {}
        for key, members in groups.items():
            for member in members:
                kind = together[(key[0], graph[member].place)]
                split.setdefault((*key, kind), []).append(member)
        return split


def places(graph: Graph) -> dict[tuple, list[int]]:
    """(block, place) -> its nodes, in the order the block runs its steps."""
    found: dict[tuple, dict[int, int]] = {}
    for node, data in graph.items():
        if data.step is not None:
            found.setdefault((data.block, data.place), {})[data.step] = node
    result = {}
    for (block, place), by_step in found.items():
        order = graph.blocks[block].order if block in graph.blocks else sorted(by_step)
        result[(block, place)] = [by_step[t] for t in order if t in by_step]
    return result


def periodic(graph: Graph, nodes: list[int], targets: list[int],
             step_places: dict[tuple, list[int]]) -> bool:
    """Whether the nodes of one place (in run order) may become ``targets``.

    Becoming the same step of one other place of the loop is periodic where the two do
    not start apart: if the next step reads both places (both carried), they must start
    from the same value (``h[t] = c[t]`` with h and c started from two inputs keeps its
    h). The other patterns (the same value at every step, the previous step's value,
    another loop's value) are periodic for the users at the same step only: a user that
    read the place a step late would read its target two steps late."""
    if any(target is None for target in targets):
        return False
    here = [(graph[t].block, graph[t].place, graph[t].step) for t in targets]
    steps = [graph[n].step for n in nodes]
    block = graph[nodes[0]].block
    same_step = all(s == step for (_, _, s), step in zip(here, steps))
    if same_step and {(b, p) for b, p, _ in here} == {(block, here[0][1])}:
        starts = carried_starts(graph, nodes, step_places)
        others = carried_starts(graph, step_places[(block, here[0][1])], step_places)
        return not (starts and others) or starts == others
    users = [(n, u) for n in nodes for u in graph.users(n)]
    # every user at the node's own step of this loop, or after the loop
    here_or_after = steps[0] is not None and all(
        graph[u].step is None or (graph[u].block, graph[u].step)
        == (block, graph[n].step) for n, u in users)
    # every user at the node's own step of this loop
    only_here = here_or_after and all(graph[u].step is not None for _, u in users) \
        and not any(n in graph.outputs.values() for n in nodes)
    if all(step is None for _, _, step in here):
        return len(set(targets)) == 1 and here_or_after  # one value from outside
    if same_step and len({(b, p) for b, p, _ in here}) == 1:
        return only_here  # another loop's place, at the same step
    rest = here[1:]
    return (here[0][2] is None and len({(b, p) for b, p, _ in rest}) == 1
            and all(b == block and s == step for (b, _, s), step in zip(rest, steps))
            and bool(rest) and only_here)  # the previous step's value, the first from outside


def carried_starts(graph: Graph, nodes: list[int], step_places: dict) -> set[int]:
    """The values a place starts from: where the next step reads the place (its ``[t-1]``),
    what the first step reads at the same argument instead."""
    starts = set()
    block = graph[nodes[0]].block
    iteration: dict[tuple, dict[int, int]] = {}  # a user's place -> {its node: iteration}
    for i, node in enumerate(nodes):
        for user in graph.users(node):
            key = (graph[user].block, graph[user].place)
            if key[0] != block or key not in step_places:
                continue
            if key not in iteration:
                iteration[key] = {n: j for j, n in enumerate(step_places[key])}
            if iteration[key].get(user) != i + 1:
                continue
            first = graph.args(step_places[key][0])
            starts |= {first[k] for k, arg in enumerate(graph.args(user)) if arg == node}
    return starts


def joined_name(names: list[str]) -> str:
    """A name for values joined into one: ``i_f_o`` for the places i, f and o,
    ``i_f_o_g.3`` for i.3, f.3, o.3 and g.3, ``W_hifoc`` for W_hi, W_hf, W_ho, W_hc."""
    owners = {name.split(".")[0] for name in names}
    if len(owners) == 1 and all(name.count(".") == 1 and not name.endswith(tuple("0123456789"))
                                for name in names):  # parameters of one layer: RNN.W_hi
        return f"{owners.pop()}.{joined_name([name.split('.')[1] for name in names])}"
    prefix = names[0]
    for name in names[1:]:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    rests = [name[len(prefix):] for name in names]
    if prefix and all(len(rest) == 1 for rest in rests):
        return prefix + "".join(rests)  # W_hi, W_hf -> W_hif
    bases = [name.split(".")[0] for name in names]
    return "_".join(bases) + names[0][len(bases[0]):]


def value_name(graph: Graph, node: int) -> str:
    data = graph[node]
    return data.place or data.attrs.get("name") or data.layer or data.op
