"""Re-rolling: the unrolled graph -> its blocks as loops, every argument classified.

The graph is unrolled for analysis and differentiation; backends execute it rolled up, as
the loop plan (``lowering/plan.py``) made from these loops says.
For every block (one recurrence) this module checks that each step repeats the same
places with the same ops, and classifies every argument of the loop body as

- ``local``: the same place at the same step,
- ``carried``: a place of the previous step (its first value comes from outside),
- ``invariant``: one node outside the block, the same at every step,
- ``stepwise`` / ``stepwise_in``: another loop's place at the same step, or the value its
  carried place had on entering that step (a backward loop reading the forward values it
  needs; the forward loop saves them),
- ``slice``: ``x[t]`` of a sequence computed before the loop (an input's, or one that an
  earlier loop collects).

Outside the block, a block's nodes may be used by ``stack_steps`` over all steps (the loop
collects that place into a sequence) or at the last step (the value after the loop).
Anything else means the graph is not periodic, which is a compiler bug.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .graph import Block, Graph
from .ops import OP


class ScheduleError(Exception):
    """Internal: the graph cannot be re-rolled (a compiler bug, not a user error)."""


@dataclass(frozen=True)
class Arg:
    kind: str  # local | carried | invariant | stepwise | stepwise_in | slice
    ref: object  # a place; a node (invariant, slice); (block, place) for stepwise kinds


@dataclass
class Loop:
    block: Block
    iterations: list  # per iteration, in run order: {place: node}
    args: dict = field(default_factory=dict)  # place -> [Arg per argument position]
    carried: dict = field(default_factory=dict)  # place -> node of its first value
    collected: dict = field(default_factory=dict)  # stack_steps node outside -> place
    finals: set = field(default_factory=set)  # places whose last value is used after the loop
    saved: set = field(default_factory=set)  # places other loops read step by step
    saved_in: set = field(default_factory=set)  # carried places read as they enter each step

    @property
    def template(self) -> dict:
        return self.iterations[0]


@dataclass
class Rerolled:
    """The graph's blocks as loops (each knowing what the values outside it read of it)."""

    loops: dict  # block name -> Loop
    in_loop: dict  # node -> (Loop, place)


def reroll(graph: Graph) -> Rerolled:
    loops = analyse_loops(graph)
    in_loop = {node: (loop, place) for loop in loops.values()
               for iteration in loop.iterations for place, node in iteration.items()}
    rerolled = Rerolled(loops, in_loop)
    for node in graph.nx.nodes:
        if node in in_loop:
            continue
        for arg in graph.args(node):
            if arg in in_loop:
                _link_outside_use(graph, node, arg, rerolled)
    for node in graph.outputs.values():
        if node in in_loop:
            _link_outside_use(graph, None, node, rerolled)
    _read_collected_sequences(loops)
    return rerolled


def analyse_loops(graph: Graph) -> dict:
    """Every block as a Loop, each argument of its body classified. Blocks are analysed in
    the order they were made, so a backward loop finds its forward loop analysed."""
    loops = {name: _collect_block(graph, block) for name, block in graph.blocks.items()}
    where = {node: (loop, place, i) for loop in loops.values()
             for i, iteration in enumerate(loop.iterations) for place, node in iteration.items()}
    for loop in loops.values():
        for place, node in loop.template.items():
            loop.args[place] = [_classify(graph, loop, place, position, where)
                                for position in range(len(graph.args(node)))]
            _check_same_op(graph, loop, place)
    return loops


def _collect_block(graph: Graph, block: Block) -> Loop:
    by_step: dict[int, dict] = {t: {} for t in range(block.steps)}
    for node, data in graph.items():
        if data.block == block.name and data.step is not None:
            if data.place in by_step[data.step]:
                raise ScheduleError(f"block {block.name}: two nodes at step {data.step} "
                                    f"are both {data.place}")
            by_step[data.step][data.place] = node
    loop = Loop(block, [by_step[t] for t in block.order])
    places = set(loop.template)
    for i, iteration in enumerate(loop.iterations):
        if set(iteration) != places:
            missing = sorted(places ^ set(iteration))[:3]
            raise ScheduleError(f"block {block.name}: step {block.order[i]} differs in places "
                                f"{missing}")
    return loop


def _check_same_op(graph: Graph, loop: Loop, place: str) -> None:
    first = graph[loop.template[place]]
    for iteration, t in zip(loop.iterations, loop.block.order):
        data = graph[iteration[place]]
        attrs = dict(data.attrs)
        if "index" in attrs:  # ops that read their own step: take_step, cut_chunk
            if attrs.pop("index") != t:
                raise ScheduleError(f"block {loop.block.name}: {place} reads another step")
            attrs["index"] = first.attrs["index"]
        if data.op != first.op or attrs != first.attrs:
            raise ScheduleError(f"block {loop.block.name}: {place} differs between steps")


def _classify(graph: Graph, loop: Loop, place: str, position: int, where: dict) -> Arg:
    refs = [graph.args(iteration[place])[position] for iteration in loop.iterations]
    mine = [where.get(ref, (None,))[0] is loop for ref in refs]
    if all(ref == refs[0] for ref in refs) and not mine[0]:
        if refs[0] in where:  # another loop's value after its last step
            _mark_final(loop, refs[0], where)
        return Arg("invariant", refs[0])
    if all(mine) and all(where[ref][2] == i for i, ref in enumerate(refs)):
        source = {where[ref][1] for ref in refs}
        if len(source) == 1:
            return Arg("local", source.pop())
    if not mine[0] and all(mine[1:]) and all(where[ref][2] == i
                                             for i, ref in enumerate(refs[1:])):
        source = {where[ref][1] for ref in refs[1:]}
        if len(source) == 1:
            carried = source.pop()
            if refs[0] in where:  # starts from another loop's value after its last step
                _mark_final(loop, refs[0], where)
            if loop.carried.setdefault(carried, refs[0]) != refs[0]:
                raise ScheduleError(f"block {loop.block.name}: {carried} starts from two values")
            return Arg("carried", carried)
    stepwise = _classify_stepwise(graph, loop, refs, where)
    if stepwise is not None:
        return stepwise
    raise ScheduleError(f"block {loop.block.name}: argument {position} of {place} is not periodic")


def _mark_final(loop: Loop, node: int, where: dict) -> None:
    other, place, i = where[node]
    if i != len(other.iterations) - 1:
        raise ScheduleError(f"block {loop.block.name} reads a middle step of block "
                            f"{other.block.name}")
    other.finals.add(place)


def _classify_stepwise(graph: Graph, loop: Loop, refs: list, where: dict) -> Arg | None:
    """Another loop's value at the same step (``stepwise``), or the value its carried place
    had on entering that step (``stepwise_in``): the other loop saves it at every step."""
    steps = loop.block.order
    others = {where[ref][0].block.name for ref in refs if ref in where}
    candidates = [where[ref][0] for ref in refs if ref in where][:1]
    if len(others) == 1 and all(ref in where for ref in refs):
        other = candidates[0]
        places = {where[ref][1] for ref in refs}
        if len(places) == 1 and all(where[ref][0].block.order[where[ref][2]] == t
                                    for ref, t in zip(refs, steps)):
            (source,) = places
            node = other.template[source]
            if graph[node].op == OP.take_step and other.args[source][0].kind == "invariant":
                return Arg("slice", other.args[source][0].ref)  # x[t]: no need to save it
            other.saved.add(source)
            return Arg("stepwise", (other.block.name, source))
    for other in {where[ref][0].block.name: where[ref][0] for ref in refs if ref in where}.values():
        for source, start in other.carried.items():
            index = other.block.index
            entering = [start if index[t] == 0 else other.iterations[index[t] - 1][source]
                        for t in steps]
            if refs == entering:
                other.saved_in.add(source)
                return Arg("stepwise_in", (other.block.name, source))
    return None


def _read_collected_sequences(loops: dict) -> None:
    """A place another loop reads step by step that its own loop collects into a sequence
    anyway (a simple cell's h[t], read by its backward loop) is read from that sequence,
    as ``x[t]`` is (``slice``): the loop saves it once, as the sequence."""
    stacks = {(loop.block.name, place): stack for loop in loops.values()
              for stack, place in loop.collected.items()}
    for loop in loops.values():
        for args in loop.args.values():
            for i, arg in enumerate(args):
                if arg.kind == "stepwise" and arg.ref in stacks:
                    args[i] = Arg("slice", stacks[arg.ref])
    for name, place in stacks:
        loops[name].saved.discard(place)


def _link_outside_use(graph: Graph, user: int | None, arg: int, rerolled: Rerolled):
    loop, place = rerolled.in_loop[arg]
    if user in loop.collected:
        return  # seen at another of its arguments
    if user is not None and graph[user].op == OP.stack_steps:
        wanted = [loop.iterations[loop.block.index[t]].get(place)
                  for t in range(loop.block.steps)]
        if graph.args(user) == wanted:
            loop.collected[user] = place
            return
    if loop.iterations[-1].get(place) == arg:
        loop.finals.add(place)
        return
    raise ScheduleError(f"node {user} uses step {graph[arg].step} of block "
                        f"{loop.block.name} in a way that cannot be re-rolled")
