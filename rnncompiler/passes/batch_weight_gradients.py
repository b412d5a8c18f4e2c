"""Batch weight gradients: BPTT's weight gradient, a running sum over the steps of
``g[t] v[t]ᵀ`` (and of ``Σ_batch g[t]`` for biases), becomes one product over all steps
after the backward loop: ``Gᵀ V`` with G and V the steps stacked.

Safe when every term of the running sum is such a product whose factors the loops can
hand over step by step (values of the backward loop, of the forward loop, what a forward
state held entering the step, or slices of a sequence). The sum's order changes (one
product instead of T additions), so values agree to rounding.
"""

from __future__ import annotations

from ..ir import ops
from ..ir.graph import Graph
from ..ir.loops import analyse_loops
from ..ir.ops import OP

BATCHABLE = ops.having("sums_examples")


def batch_weight_gradients(graph: Graph) -> bool:
    loops = analyse_loops(graph)
    stacks: dict = {}  # (loop, place, kind) -> the stacked sequence, made once
    changed = False
    for loop in loops.values():
        if not loop.block.gradient_of:
            continue
        for place, start in list(loop.carried.items()):
            final = loop.iterations[-1][place]
            used_after = [u for u in graph.users(final) if graph[u].block != loop.block.name]
            if graph[start].op != OP.zeros_shaped or not (
                    used_after or final in graph.outputs.values()):
                continue  # not a running sum that starts from nothing and is read after
            terms = _chain_terms(graph, loop, place)
            if terms is None:
                continue
            batched = [_batched_term(graph, loops, loop, term, stacks) for term in terms]
            if any(b is None for b in batched):
                continue
            total = batched[0]
            for other in batched[1:]:
                total = graph.add(OP.add, [total, other], layer=loop.block.layer)
            graph.replace_uses(final, total)
            changed = True
    return changed


def _chain_terms(graph: Graph, loop, place: str) -> list[str] | None:
    """The places of the terms a carried running sum adds at each step, or None."""
    node = loop.template[place]
    terms = []
    while True:
        if graph[node].op != OP.add or graph[node].step is None:
            return None
        previous, term = graph.args(node)
        if graph[term].op not in BATCHABLE or graph[term].block != loop.block.name:
            return None
        terms.append(graph[term].place)
        if graph[previous].block != loop.block.name or \
                graph[previous].step != graph[node].step:
            return terms  # reached the value carried in from the previous step
        node = previous


def _batched_term(graph: Graph, loops: dict, loop, term_place: str,
                  stacks: dict) -> int | None:
    """The term summed over all steps at once, as a node after the loops."""
    node = loop.template[term_place]
    op, attrs = graph[node].op, dict(graph[node].attrs)
    factors = []
    for arg in loop.args[term_place]:
        key = (loop.block.name, arg)
        if key not in stacks:
            stacks[key] = _stacked(graph, loops, loop, arg)
        factors.append(stacks[key])
    if any(f is None for f in factors):
        return None
    return graph.add(op, factors, layer=loop.block.layer, **attrs)


def _stacked(graph: Graph, loops: dict, loop, arg) -> int | None:
    """A per-step factor as a whole sequence [batch, T, n], in input positions."""
    steps = range(loop.block.steps)
    if arg.kind == "slice":
        return arg.ref
    if arg.kind == "local":
        source = loop
        place = arg.ref
    elif arg.kind in ("stepwise", "stepwise_in"):
        source, place = loops[arg.ref[0]], arg.ref[1]
    else:
        return None
    node = source.template[place]
    if graph[node].op == OP.take_step and source.args[place][0].kind == "invariant":
        return source.args[place][0].ref  # x[t] of a sequence: the sequence itself
    index = source.block.index
    stack = graph.add(OP.stack_steps, [source.iterations[index[t]][place] for t in steps],
                      layer=source.block.layer)
    if arg.kind != "stepwise_in":
        return stack
    return graph.add(OP.shift_steps, [stack, source.carried[place]], layer=source.block.layer,
                     backward=source.block.backward)
