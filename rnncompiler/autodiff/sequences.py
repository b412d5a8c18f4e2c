"""The backward pass of a sequence made outside loops: ``stack_steps`` (a loop's place
collected over its steps), ``repeat_steps`` (one value fed to every step), ``concat`` of
sequences, and an op on each example's steps (``per_example``: an embedding of a sequence
of ids). Its cotangent comes as a whole (from the loss, say) and as pieces for single
steps (from the loops that read it one step at a time); both go on to what it was made
from."""

from __future__ import annotations

from ..ir import ops
from ..ir.ops import OP
from .routing import Cotangents
from .vjp import GradientError

PER_EXAMPLE = ops.having("per_example")


def propagate_sequence(cotangents: Cotangents, node: int, lane: int,
                       whole: int | None) -> int | None:
    """Send the cotangent of sequence ``node`` in ``lane`` — ``whole`` for the whole
    sequence (or None) plus the pieces for single steps — on to its arguments; for an op
    on each example's steps, return it as one whole sequence, for the op's own VJP."""
    graph, scope = cotangents.graph, cotangents.scope
    op, args = graph[node].op, graph.args(node)
    pieces = cotangents.take_step_pieces(node, lane)
    if op == OP.stack_steps:
        block, place = scope.place_key(args[0])
        if whole is not None:
            cotangents.add_whole(block, place, lane, whole)
        for t, values in pieces.items():
            for value in values:
                cotangents.add(args[t], lane, value)
    elif op == OP.repeat_steps:
        _repeat(cotangents, args[0], lane, whole, pieces)
    elif op == OP.concat:
        start = 0
        for arg in args:
            stop = start + graph[arg].shape[-1]
            if arg in scope.param_dependent:
                _slice_into(cotangents, arg, lane, whole, pieces, start, stop)
            start = stop
    elif op in PER_EXAMPLE:
        return _whole(cotangents, node, lane, whole, pieces)
    else:
        raise GradientError(f"cannot differentiate the sequence op {op}")
    return None


def _whole(cotangents: Cotangents, node: int, lane: int, whole: int | None,
           pieces: dict) -> int | None:
    """The cotangent of every step of ``node`` as one sequence: ``whole`` plus, for each
    loop that sent pieces (both directions of a bidirectional layer, say), its pieces
    stacked over the steps (zeros at a step that got none)."""
    graph, naming = cotangents.graph, cotangents.naming
    name = f"d{graph[node].layer or 'seq'}{naming.suffix(lane)}"
    by_block: dict = {}
    for t, values in pieces.items():
        for value in values:
            by_block.setdefault(graph[value].block, {}).setdefault(t, []).append(value)
    parts = [whole] if whole is not None else []
    zeros = None
    for block_pieces in by_block.values():
        per_step = []
        for t in range(graph[node].shape[0]):
            if t in block_pieces:
                where = cotangents.placement.beside(block_pieces[t][0])
                per_step.append(naming.sum_nodes(block_pieces[t], where, name))
                continue
            if zeros is None:
                zeros = graph.add(OP.zeros, [node], size=graph[node].shape[-1],
                                  layer=graph[node].layer)
            per_step.append(zeros)
        parts.append(graph.add(OP.stack_steps, per_step, layer=graph[node].layer))
    if not parts:
        return None
    return naming.sum_nodes(parts, cotangents.placement.where(node), name)


def _repeat(cotangents: Cotangents, arg: int, lane: int, whole: int | None,
            pieces: dict) -> None:
    """A value fed to every step: its cotangent is the sum over the steps."""
    graph, naming = cotangents.graph, cotangents.naming
    parts = [graph.add(OP.sum_steps, [whole])] if whole is not None else []
    if pieces:
        per_step = [naming.sum_nodes(pieces[t], cotangents.placement.beside(pieces[t][0]),
                                     "drepeat")
                    for t in range(len(pieces))]
        parts.append(graph.add(OP.sum_steps, [graph.add(OP.stack_steps, per_step)]))
    if arg in cotangents.scope.param_dependent and parts:
        total = naming.sum_nodes(parts, {}, "drepeat")
        if arg in cotangents.scope.in_loop:  # repeats a loop's last value
            cotangents.route_final(arg, total, lane)
        else:
            cotangents.add(arg, lane, total)


def _slice_into(cotangents: Cotangents, arg: int, lane: int, whole: int | None,
                pieces: dict, start: int, stop: int) -> None:
    """The features ``start:stop`` of a concatenation's cotangent, to the part ``arg``."""
    graph = cotangents.graph
    if whole is not None:
        cotangents.add(arg, lane, graph.add(OP.slice_features, [whole], start=start,
                                            stop=stop))
    for t, values in pieces.items():
        for value in values:
            where = cotangents.placement.beside(value)
            part = graph.add(OP.slice_features, [value], start=start, stop=stop,
                             place=f"{graph[value].place}[{start}:{stop}]", **where)
            cotangents.add_step_piece(arg, lane, t, part)
