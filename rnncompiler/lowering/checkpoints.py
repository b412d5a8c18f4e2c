"""Gradient checkpointing in the loop plan (``unroll.checkpoint``): which forward loops keep
their states every k steps only, and what runs again, segment by segment, in the backward
pass.

A forward loop ``F`` that runs one step at a time saves, at every step, the values its
backward loop ``B`` reads: BPTT's activation memory, O(T). Checkpointed, ``F`` runs in
segments of k steps (in its own order: a backward-direction layer's first segment is
its last k steps) and keeps only its carried states at the start of each segment. ``B``
then runs segment by segment, in reverse: each segment first runs ``F``'s body again over
its k steps, from the kept states, into k-step buffers, then ``B``'s body over them.

What else is O(T) goes with the segments where it can, or the memory gain would be small:

- ``before``: the products over whole sequences that only ``F`` reads a step at a time
  (``hoist_input_products``: ``W x + b``) run per segment, on the segment's slice of
  the input, in the forward run and again in the recomputation;
- ``after``: the weight gradients that ``batch_weight_gradients`` made one product over
  all steps (``Gᵀ V``, ``Σ G``) run per segment and are summed over the segments, from
  the segment's gate gradients (``B``'s sequences that only they read, k steps long),
  ``F``'s values recomputed, or a slice of a sequence kept whole (the input);
  ``shift_steps`` of a state (what it held entering each step) starts from the state
  kept for the segment;
- ``F``'s sequences that only ``B`` and ``after`` read are made in the recomputation
  only, k steps long.

What stays O(T): the inputs, any sequence read by something outside the segments (a
layer's output sequence, the sequence one layer hands the next, a gradient a layer hands
the one below), a mask of lengths or dropout. A loop that cannot be segmented (read
step by step by another forward loop, or by more than one backward loop) keeps full
storage; ``Plan.describe`` says which loops are checkpointed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir.graph import Graph
from ..ir.ops import OP, having

SUMS_STEPS = having("sums_examples")  # Σ over examples and steps: a sum of segments' sums
SEGMENT_MAPS = (OP.matvec, OP.matvec_t, OP.add)  # what a hoisted product over x is made of


@dataclass
class Checkpoint:
    """How a forward loop and its backward loop run in segments of ``every`` steps."""

    forward: object  # LoopPlan of F
    backward: object  # LoopPlan of B
    every: int | str  # k, or "auto": ⌈√T⌉ at run time
    before: list = field(default_factory=list)  # nodes run per segment before F's steps
    after: list = field(default_factory=list)  # nodes run per segment after B's (summed)
    shifts: list = field(default_factory=list)  # the shift_steps nodes among ``after``
    recollected: set = field(default_factory=set)  # F's stacks made in the recomputation only
    local: set = field(default_factory=set)  # B's stacks k steps long (only ``after`` reads)


def plan_checkpoints(graph: Graph, items: list, loop_plans: list) -> list:
    """Mark the loops that run checkpointed (``LoopPlan.checkpoint``) and take the nodes
    that run per segment out of ``items``; returns the items left."""
    every = graph.checkpoint
    position = {id(item) if not isinstance(item, int) else item: i
                for i, item in enumerate(items)}
    moved: set = set()
    for forward in loop_plans:
        backward = _backward_loop(graph, forward, loop_plans)
        if backward is None:
            continue
        cp = Checkpoint(forward, backward, every)
        cp.before = _before(graph, forward, items, position)
        cp.after, cp.shifts = _after(graph, cp, items, position)
        _locals(graph, cp, loop_plans)
        forward.checkpoint = backward.checkpoint = cp
        moved |= set(cp.before) | set(cp.after) | cp.local | cp.recollected
    return [item for item in items if not isinstance(item, int) or item not in moved]


def _readers(loop, loop_plans: list) -> list:
    """The loops that read ``loop``'s values step by step (saved, or its sequences)."""
    name = loop.block.name
    stacks = set(loop.collected)
    found = []
    for other in loop_plans:
        if other is loop:
            continue
        for args in other.args.values():
            if any((arg.kind in ("stepwise", "stepwise_in") and arg.ref[0] == name)
                   or (arg.kind == "slice" and arg.ref in stacks) for arg in args):
                found.append(other)
                break
    return found


def _backward_loop(graph: Graph, forward, loop_plans: list):
    """The backward loop of ``forward`` (the gradient loop of its block), if ``forward`` can
    be checkpointed: no other loop reads its saved values; else None."""
    block = forward.block
    if forward.whole or block.gradient_of or not forward.carried:
        return None
    mine = [loop for loop in loop_plans if loop.block.gradient_of == block.name]
    if len(mine) != 1:
        return None
    backward, readers = mine[0], _readers(forward, loop_plans)
    stepwise = [r for r in readers if any(
        arg.kind in ("stepwise", "stepwise_in") and arg.ref[0] == block.name
        for args in r.args.values() for arg in args)]
    other = backward.block
    if backward not in readers or any(r is not backward for r in stepwise) \
            or other.steps != block.steps or backward.whole \
            or other.backward == block.backward or other.follows_steps != block.follows_steps:
        return None
    return backward


def _before(graph: Graph, forward, items: list, position: dict) -> list:
    """The products over whole sequences that only ``forward`` reads a step at a time and
    that map each step of a sequence made before it on its own (``W x + b``: of an input,
    or of the sequence a layer below hands it), in item order."""
    steps, limit = forward.block.steps, position[id(forward)]
    inside = {node for iteration in forward.iterations for node in iteration.values()}
    candidates = {arg.ref for place, args in forward.args.items() for arg in args
                  if arg.kind == "invariant" and graph[forward.template[place]].op == OP.take_step}
    chosen: set = set()  # grown over every map of sequences that feeds F, then pruned
    pending = list(candidates)
    while pending:
        node = pending.pop()
        data = graph[node]
        if node not in chosen and data.step is None and data.op in SEGMENT_MAPS \
                and data.batched and data.shape[:1] == (steps,):
            chosen.add(node)
            pending.extend(graph.args(node))
    changed = True
    while changed:  # keep what only F and other chosen nodes read, made of input steps
        changed = False
        for node in list(chosen):
            sequences = [arg for arg in graph.args(node) if graph[arg].batched]
            if not all(u in inside or u in chosen for u in graph.users(node)) or not all(
                    arg in chosen or _is_step_sequence(graph, arg, steps)
                    or (arg not in candidates and position.get(arg, limit) < limit
                        and _is_made_sequence(graph, arg, steps))
                    for arg in sequences):
                chosen.discard(node)
                changed = True
    return [item for item in items if isinstance(item, int) and item in chosen]


def _is_step_sequence(graph: Graph, node: int, steps: int) -> bool:
    """An input sequence of the loop's length, whose step t is its position t."""
    data = graph[node]
    return data.op == OP.input and data.batched and len(data.shape) >= 1 \
        and data.shape[0] == steps and "classes" not in data.attrs


def _is_made_sequence(graph: Graph, node: int, steps: int) -> bool:
    """A sequence of the loop's length made outside loops or collected by one (a layer's
    output sequence), in input positions."""
    data = graph[node]
    return data.step is None and data.batched and data.shape[:1] == (steps,) \
        and data.op != OP.input


def _after(graph: Graph, cp: Checkpoint, items: list, position: dict):
    """The sums over steps that read ``backward``'s sequences (the batched weight
    gradients), and the ``shift_steps`` of ``forward``'s states they read."""
    forward, backward, before = cp.forward, cp.backward, set(cp.before)
    steps = forward.block.steps
    b_stacks, f_stacks = set(backward.collected), set(forward.collected)
    limit = position[id(forward)]  # whole sequences they read exist before F runs

    def shift_ok(node: int) -> bool:
        data = graph[node]
        if data.op != OP.shift_steps or data.attrs["backward"] != forward.block.backward:
            return False
        stack, first = graph.args(node)
        place = forward.collected.get(stack)
        return place is not None and forward.carried.get(place) == first

    def sequence_ok(node: int) -> bool:
        if node in b_stacks or node in f_stacks or shift_ok(node):
            return True
        data = graph[node]
        return data.step is None and data.batched and data.shape[:1] == (steps,) \
            and position.get(node, limit) < limit and node not in before

    after, shifts = [], []
    for item in items:
        if not isinstance(item, int):
            continue
        data = graph[item]
        if data.op not in SUMS_STEPS or data.step is not None:
            continue
        args = graph.args(item)
        batched = [a for a in args if graph[a].batched]
        if not any(a in b_stacks for a in args) or not all(sequence_ok(a) for a in batched):
            continue
        if data.op == OP.sum_batch and len(graph[args[0]].shape) != len(data.shape) + 1:
            continue  # (it must sum the steps too)
        after.append(item)
        shifts += [a for a in args if shift_ok(a) and a not in shifts]
    while True:  # a shift other nodes read as well stays whole, and so do its readers
        kept = [s for s in shifts if all(u in after for u in graph.users(s))]
        after = [n for n in after if all(a in kept or graph[a].op != OP.shift_steps
                                         for a in graph.args(n))]
        if kept == shifts:
            break
        shifts = kept
    ordered = [item for item in items if isinstance(item, int) and item in set(shifts)]
    return ordered + after, ordered


def _locals(graph: Graph, cp: Checkpoint, loop_plans: list) -> None:
    """Which sequences live k steps long: ``B``'s that only ``after`` reads, and ``F``'s that
    only ``B`` (a step at a time) and ``after`` read."""
    after, outputs = set(cp.after), set(graph.outputs.values())
    sliced: dict = {}  # a sequence -> the loops that read it a step at a time (no edge)
    for loop in loop_plans:
        for args in loop.args.values():
            for arg in args:
                if arg.kind == "slice":
                    sliced.setdefault(arg.ref, set()).add(id(loop))
    for stack in cp.backward.collected:
        if stack not in outputs and stack not in sliced \
                and all(u in after for u in graph.users(stack)):
            cp.local.add(stack)
    for stack in cp.forward.collected:
        if stack not in outputs and sliced.get(stack, set()) <= {id(cp.backward)} \
                and all(u in after for u in graph.users(stack)):
            cp.recollected.add(stack)
