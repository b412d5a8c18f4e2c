"""One op's VJP rule, applied: what a rule builds with, and the error when an op has none.

Every op in ``ir/ops`` carries its VJP rule: from the cotangent of its output, nodes for
the cotangents of the arguments that need one. A rule builds through a ``VjpBuilder``,
which puts each node at the step of the gradient it belongs to and numbers it under the
cotangent's name. Kept apart from the sweep so that the rules can be tested alone
(tests/test_vjps.py)."""

from __future__ import annotations

from ..ir import ops
from ..ir.graph import Graph
from ..ir.ops import OP


class GradientError(Exception):
    """Internal: a node needs a gradient through an op without a VJP rule."""


def vjp_rule(op: str):
    """The VJP rule of ``op``; a GradientError if it has none."""
    rule = ops.get(op).vjp
    if rule is None:
        raise GradientError(f"op {op} has no VJP rule")
    return rule


class VjpBuilder:
    """What a VJP rule builds with: nodes annotated with the step they belong to."""

    def __init__(self, graph: Graph, where: dict, prefix: str, needs: list):
        self.graph = graph
        self.where = where
        self.prefix = prefix
        self.needs = needs
        self.count = 0

    def add(self, op: str, args, **attrs) -> int:
        self.count += 1
        return self.graph.add(op, args, place=f"{self.prefix}/{self.count}", **self.where,
                              **attrs)

    def const(self, value: float) -> int:
        return self.graph.const(value)

    def shape(self, node: int) -> tuple:
        return self.graph[node].shape

    def unbroadcast(self, grad: int, like: int) -> int:
        """``grad`` summed down to the shape of ``like`` (a parameter has no batch axis)."""
        if self.graph[grad].batched and not self.graph[like].batched:
            return self.add(OP.sum_batch, [grad], shape=self.shape(like))
        return grad
