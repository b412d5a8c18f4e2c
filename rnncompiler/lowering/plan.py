"""The loop plan: what runs in which order, made once after the passes, for every backend.

``ir/loops.py`` re-rolls the unrolled graph into loops and classifies what each loop body
reads. The plan decides how each loop runs, so that no backend decides it again:

- ``whole``: a loop whose steps are independent and read nothing step by step from
  another loop runs as the same ops over whole [batch, T, n] sequences (a dense layer at
  every step); every other loop runs one step at a time (a ``for`` loop, a ``Scan``);
- ``order``: every place of the body, each after its arguments (backends that write one
  value per place: ONNX);
- ``body``: the places that get a line of their own, the statements (the others are
  inlined into their one user), in the order they run, and ``keep_previous``, the carried
  places whose previous value must be kept aside because a statement reads it after the
  place is reassigned (backends that write expressions: NumPy), and ``step_reads``, how
  often the body reads step t of each sequence or saved value (read more than once, it
  is worth a name of its own);
- ``items``: the values outside loops and the loops, in an order that respects every
  dependency;
- ``checkpoint``: with ``unroll.checkpoint``, for a backend that prints it, which forward
  loop runs in segments of k steps keeping only its states, and its backward loop runs
  each segment's steps again first (``checkpoints.py``).

A backend prints the plan: it decides how an op is written, never what runs when.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from ..ir.graph import Graph
from ..ir.loops import Loop, reroll
from ..ir.ops import OP
from .checkpoints import plan_checkpoints

# the kinds of argument that read step t of a value made outside the loop body
STEP_READS = ("slice", "stepwise", "stepwise_in")


def saved_value(kind: str, ref: tuple) -> tuple:
    """(block, place, "after" | "in"): the value another loop saves at every step that a
    ``stepwise`` or ``stepwise_in`` argument reads, as ``LoopPlan.per_step`` names it."""
    block, place = ref
    return block, place, "after" if kind == "stepwise" else "in"


@dataclass
class LoopPlan:
    """How one loop runs; its re-rolled facts (places, arguments, carries) are ``loop``'s."""

    loop: Loop
    whole: bool = False
    order: list = field(default_factory=list)
    body: list = field(default_factory=list)
    keep_previous: set = field(default_factory=set)
    step_reads: dict = field(default_factory=dict)  # (kind, ref) -> reads, first read first
    checkpoint: object = None  # a Checkpoint (checkpoints.py): it runs in segments of k steps

    # the re-rolled loop's facts, read through the plan
    block = property(lambda self: self.loop.block)
    template = property(lambda self: self.loop.template)
    iterations = property(lambda self: self.loop.iterations)
    args = property(lambda self: self.loop.args)
    carried = property(lambda self: self.loop.carried)
    collected = property(lambda self: self.loop.collected)
    finals = property(lambda self: self.loop.finals)
    saved = property(lambda self: self.loop.saved)
    saved_in = property(lambda self: self.loop.saved_in)

    @property
    def carries(self) -> list[str]:
        """The carried places, in the order a loop passes them on."""
        return sorted(self.carried)

    @property
    def per_step(self) -> list[tuple]:
        """What a loop run one step at a time writes at every step, in order: (kind, the
        sequence node outside or None, place), kind ``collected`` (a sequence the graph
        reads), ``after`` (a value another loop reads at the same step) or ``in`` (a
        carried value as it entered the step, for another loop)."""
        return ([("collected", stack, place) for stack, place in self.collected.items()]
                + [("after", None, place) for place in sorted(self.saved)]
                + [("in", None, place) for place in sorted(self.saved_in)])

    def reads(self, *kinds: str) -> bool:
        """Whether some argument of the body is of one of ``kinds``."""
        return any(arg.kind in kinds for args in self.args.values() for arg in args)


@dataclass
class Plan:
    graph: Graph
    items: list  # node ids outside loops and LoopPlans, in execution order

    @property
    def loops(self) -> list[LoopPlan]:
        return [item for item in self.items if isinstance(item, LoopPlan)]

    def describe(self) -> str:
        """The plan as text, one line per value outside loops and per loop."""
        lines = []
        for item in self.items:
            if isinstance(item, LoopPlan):
                how = "over whole sequences" if item.whole else (
                    "backward" if item.block.backward else "forward") + " one step at a time"
                lines.append(f"loop {item.block.name} ({how}): {len(item.body)} statements, "
                             f"carries {sorted(item.carried)}, collects "
                             f"{sorted(item.collected.values())}, saves {sorted(item.saved)}"
                             + _checkpointed(item))
            else:
                data = self.graph[item]
                lines.append(f"{data.op} {data.place or data.layer or ''}".rstrip())
        return "\n".join(lines)


def _checkpointed(loop: LoopPlan) -> str:
    cp = loop.checkpoint
    if cp is None:
        return ""
    if loop is cp.forward:
        return f", in segments of {cp.every} steps, keeping its states at each one's start"
    return (f", a segment at a time, each after {cp.forward.block.name}'s steps again; "
            f"per segment too: {len(cp.before)} products before, "
            f"{len(cp.after) - len(cp.shifts)} sums after")


def make_plan(graph: Graph, checkpoint: bool = False) -> Plan:
    """The plan of ``graph``; with ``checkpoint`` (a backend that prints segments), the
    training graph's ``unroll.checkpoint`` is planned (``checkpoints.py``), else every
    forward loop keeps what its backward loop reads at every step."""
    rerolled = reroll(graph)
    plans = {name: _plan_loop(graph, loop) for name, loop in rerolled.loops.items()}
    items = _order_items(graph, rerolled.loops, rerolled.in_loop)
    items = [plans[item] if isinstance(item, str) else item for item in items]
    if checkpoint and graph.checkpoint is not None:
        items = plan_checkpoints(graph, items, [plans[name] for name in rerolled.loops])
    return Plan(graph, items)


def _plan_loop(graph: Graph, loop: Loop) -> LoopPlan:
    plan = LoopPlan(loop)
    plan.whole = (not loop.carried and not loop.finals and not loop.saved_in
                  and not plan.reads(*STEP_READS)
                  and not _reads_examples_at_every_step(graph, loop))
    deps = nx.DiGraph()
    deps.add_nodes_from(loop.template)
    for place, args in loop.args.items():
        deps.add_edges_from((arg.ref, place) for arg in args if arg.kind == "local")
    plan.order = list(nx.topological_sort(deps))
    _order_statements(graph, plan)
    _count_step_reads(plan)
    return plan


def _reads_examples_at_every_step(graph: Graph, loop: Loop) -> bool:
    """Whether a step reads a value of each example's from outside the loop other than as
    ``x[t]`` (a vector fed at every step, the zeros a state of parameters only is added
    to): such a map cannot run as ops over whole sequences, its reads have no T axis."""
    return any(graph[arg.ref].batched for place, args in loop.args.items() for arg in args
               if arg.kind == "invariant" and graph[loop.template[place]].op != OP.take_step)


def _order_statements(graph: Graph, plan: LoopPlan) -> None:
    """Choose the body's statements (the places that get a line of their own; the others
    are inlined into their one user) and order them so each comes after its arguments
    and, where possible, a carried place is reassigned only after every statement that
    reads its previous value. Where that is impossible, keep_previous names the places
    whose previous value must be kept aside at the top of the body."""
    loop = plan.loop
    uses = {place: 0 for place in loop.template}
    for args in loop.args.values():
        for arg in args:
            if arg.kind == "local":
                uses[arg.ref] += 1
    exported = (loop.carried.keys() | loop.finals | set(loop.collected.values()) | loop.saved)
    statements = {
        place for place, node in loop.template.items()
        if place in exported or (graph[node].op != OP.take_step
                                 and (graph[node].comment is not None or uses[place] > 1))}
    user = {arg.ref: place for place, args in loop.args.items() for arg in args
            if arg.kind == "local" and uses[arg.ref] == 1}
    home = {}  # place -> the statement in which it is computed
    for place in loop.template:
        at = place
        while at not in statements and at in user:
            at = user[at]
        home[place] = at if at in statements else None
    deps = nx.DiGraph()
    deps.add_nodes_from(statements)
    reads_previous = []  # (statement, carried place)
    for place, args in loop.args.items():
        for arg in args:
            if arg.kind == "local" and home[place] is not None \
                    and home[arg.ref] not in (None, home[place]):  # (a dead place: no line)
                deps.add_edge(home[arg.ref], home[place])
            if arg.kind == "carried" and home[place] is not None:
                reads_previous.append((home[place], arg.ref))
    strict = deps.copy()
    strict.add_edges_from((reader, carried) for reader, carried in reads_previous
                          if reader != carried)
    key = loop.template.get
    if nx.is_directed_acyclic_graph(strict):
        plan.body = list(nx.lexicographical_topological_sort(strict, key=key))
        return
    plan.body = list(nx.lexicographical_topological_sort(deps, key=key))
    position = {place: i for i, place in enumerate(plan.body)}
    plan.keep_previous = {carried for reader, carried in reads_previous
                          if position[reader] > position[carried]}


def _count_step_reads(plan: LoopPlan) -> None:
    """How often the statements, with their inlined places, read step t of a sequence or
    of a saved value, in the order the body reads them."""
    statements = set(plan.body)

    def visit(place: str) -> None:
        for arg in plan.args[place]:
            if arg.kind in STEP_READS:
                plan.step_reads[(arg.kind, arg.ref)] = plan.step_reads.get(
                    (arg.kind, arg.ref), 0) + 1
            elif arg.kind == "local" and arg.ref not in statements:
                visit(arg.ref)  # inlined into this statement

    for place in plan.body:
        visit(place)


def _order_items(graph: Graph, loops: dict, in_loop: dict) -> list:
    """Nodes outside loops and whole loops (by block name), in an order that respects every
    dependency."""
    group = {node: (in_loop[node][0].block.name if node in in_loop else node)
             for node in graph.nx.nodes}
    condensed = nx.DiGraph()
    condensed.add_nodes_from(set(group.values()))
    first_node: dict = {}
    for node in graph.nx.nodes:
        first_node[group[node]] = min(first_node.get(group[node], node), node)
    for source, target in graph.nx.edges():
        if group[source] != group[target]:
            condensed.add_edge(group[source], group[target])
    return list(nx.lexicographical_topological_sort(condensed, key=lambda g: first_node[g]))
