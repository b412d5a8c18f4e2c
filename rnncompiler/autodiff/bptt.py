"""BPTT: the loss graph -> gradient nodes for every parameter, by reverse-mode
differentiation of the unrolled graph with each op's VJP rule.

A parameter is one node used at every step; its gradient is the sum of the contributions
of all those uses — BPTT's weight gradient — kept as a running sum that the backward loop
carries. The backward pass of a recurrence is itself periodic, so it re-rolls into a loop:

- every step's cotangent of a recurrent state is ``carry + in-step contributions``, where
  ``carry`` is the sum of what the next step sent back (zeros before the first backward
  step), so every step has the same shape of graph;
- what reaches a step's node from outside its block (the loss on a sequence, a dense layer
  on the last state) arrives as a whole-sequence cotangent, read back one step at a time.

This module is the sweep over the graph in reverse topological order. The rest of the
package, lowest first: ``scope`` (what needs a gradient, where loop nodes sit),
``truncation`` (window lanes, chunk cuts), ``placement`` and ``naming`` (where gradient
nodes go, what they are called), ``carries`` and ``running_sums`` (what the backward loop
carries), ``routing`` (cotangents into and out of nodes), ``sequences`` (sequence ops
outside loops) and ``vjp`` (one op's rule).
"""

from __future__ import annotations

from ..build.losses import add_loss
from ..build.unroll import unroll
from ..frontend.spec import Spec, UnrollSpec
from ..ir.graph import Graph
from ..ir.ops import OP
from .carries import StateCarries
from .naming import Naming
from .placement import Placement
from .routing import Cotangents
from .running_sums import RunningSums
from .scope import GradientScope
from .sequences import propagate_sequence
from .truncation import Truncation
from .vjp import VjpBuilder, vjp_rule


def training_graph(spec: Spec, steps: int | None = None) -> Graph:
    """The forward graph of ``spec`` with its loss and the gradient of every parameter;
    outputs ``loss`` and ``grad.<param>``."""
    graph = unroll(spec, steps, dropout=True)  # dropout's masks as inputs
    loss = add_loss(graph, spec)
    differentiate(graph, loss, spec.unroll)
    graph.checkpoint = spec.unroll.checkpoint
    return graph


def differentiate(graph: Graph, loss: int, truncation: UnrollSpec) -> None:
    """Add the gradient of ``loss`` for every parameter; outputs become loss and grads."""
    grads = parameter_gradients(graph, loss, truncation)
    graph.outputs = {"loss": loss}
    for name, node in graph.params.items():
        graph.outputs[f"grad.{name}"] = grads.get(node) or graph.zeros_like_param(node)


def parameter_gradients(graph: Graph, loss: int, unroll: UnrollSpec) -> dict:
    """Param node -> the node of its gradient (None where nothing reaches it), added to
    ``graph`` by one sweep from the loss back to the inputs."""
    scope = GradientScope(graph, loss)
    truncation = Truncation(unroll, scope.loops)
    placement = Placement(graph, scope)
    naming = Naming(graph, truncation)
    carries = StateCarries(graph, scope, truncation, placement, naming)
    running_sums = RunningSums(graph, scope, placement, naming)
    cotangents = Cotangents(graph, scope, truncation, placement, naming, carries,
                            running_sums)
    cotangents.add(loss, 0, graph.const(1.0))
    for node in reversed(graph.topological_order()):
        if node not in scope.needs_gradient or graph[node].op in (OP.param, OP.input, OP.const):
            continue
        sequence = node not in scope.in_loop and len(graph[node].shape) == 2 \
            and graph[node].batched
        for lane in cotangents.lanes_of(node):
            if sequence:
                parts = cotangents.take(node, lane)
                whole = naming.sum_nodes(parts, placement.where(node), "dseq") if parts \
                    else None
                whole = propagate_sequence(cotangents, node, lane, whole)
                if whole is not None:  # an op on each example's steps: its own VJP
                    _propagate(cotangents, node, lane, whole)
            else:
                _propagate(cotangents, node, lane, cotangents.total(node, lane))
    carries.finish()  # the carries into unneeded starts keep every step alike
    return {param: running_sums.param_total(param) for param in graph.params.values()}


def _propagate(cotangents: Cotangents, node: int, lane: int, grad: int) -> None:
    """One node's VJP: its cotangent ``grad`` in ``lane`` on to its arguments."""
    graph = cotangents.graph
    op, args = graph[node].op, graph.args(node)
    if op == OP.take_step and args[0] in cotangents.scope.param_dependent:
        cotangents.add_step_piece(args[0], lane, graph[node].attrs["index"], grad)
        return
    rule = vjp_rule(op)
    needs = [cotangents.needs(node, k, arg, lane) for k, arg in enumerate(args)]
    name = graph[node].place or graph[node].layer or op
    builder = VjpBuilder(graph, cotangents.placement.where(node),
                         f"d{name}{cotangents.naming.suffix(lane)}", needs)
    grads = rule(builder, grad, node, args, graph[node].attrs)
    for position, (arg, value) in enumerate(zip(args, grads)):
        if value is not None and needs[position]:
            cotangents.route(node, position, arg, value, lane)
