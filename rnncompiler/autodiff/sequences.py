"""The backward pass of a sequence made outside loops: ``stack_steps`` (a loop's place
collected over its steps), ``repeat_steps`` (one value fed to every step) and ``concat`` of
sequences. Its cotangent comes as a whole (from the loss, say) and as pieces for single
steps (from the loops that read it one step at a time); both go on to what it was made
from."""

from __future__ import annotations

from ..ir.ops import OP
from .routing import Cotangents
from .vjp import GradientError


def propagate_sequence(cotangents: Cotangents, node: int, lane: int,
                       whole: int | None) -> None:
    """Send the cotangent of sequence ``node`` in ``lane`` — ``whole`` for the whole
    sequence (or None) plus the pieces for single steps — on to its arguments."""
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
    else:
        raise GradientError(f"cannot differentiate the sequence op {op}")


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
