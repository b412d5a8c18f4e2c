"""Decompose the losses: every loss op and loss-gradient op (``ir/ops/losses.py``) becomes
the primitive ops that compute it, by its reference evaluation's formula:

- ``mse``: ``mean_all((p - t)²)``; its gradient ``g · 2 (p - t) / size(p)``;
- ``cross_entropy``: ``-mean_all(sum_features(t · log_softmax(z)))``, the mean over rows
  of ``-Σ t log softmax(z)``; its gradient ``g (softmax(z) Σt - t) / rows``, where
  ``rows`` is the size of ``Σt`` (one total per row);
- with lengths, the masked forms: sums over the steps that count (mask 1), divided by the
  steps counted (times the features, for mse).

The builder and the autodiff keep the loss ops (the autodiff differentiates them by their
VJP rules); from here on a backend lowers reductions and arithmetic, and writes no loss
math of its own. Run first at every level, so the clean-up passes see inside the losses:
the loss and its gradient compute ``p - t`` (or ``Σt``) once. Batch and T stay run-time
sizes: a count of examples or steps is a size or a sum of the arrays, never a constant
(the features, fixed when compiling, are one).

Safe always: each formula is its op's reference evaluation, operation for operation
(but for a negation moved out of a mean, a sum or a quotient, which is exact).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partialmethod

from ..ir.graph import Graph
from ..ir.ops import OP


def decompose_losses(graph: Graph) -> bool:
    losses = sorted(node for node, data in graph.items()
                    if data.op in FORMULAS)  # in the order they were made
    for node in losses:
        formula = Formula(graph, node)
        args = [Term(formula, arg) for arg in graph.args(node)]
        value = FORMULAS[graph[node].op](formula, *args)
        graph.update(value.node, place=graph[node].place)  # the name it had
        graph.substitute(node, value.node)
    return bool(losses)


class Formula:
    """Adds the nodes of one formula where the node it stands for was (its step, layer
    and block); numbers in it become constants."""

    def __init__(self, graph: Graph, node: int):
        self.graph = graph
        self.where = graph[node].where

    def op(self, name: str, *args) -> Term:
        nodes = [arg.node if isinstance(arg, Term) else self.graph.const(arg) for arg in args]
        return Term(self, self.graph.add(name, nodes, **self.where))

    def features(self, term: Term) -> int:
        """The size of the feature axis (fixed when compiling, unlike batch and T)."""
        return self.graph[term.node].shape[-1]

    sum_all = partialmethod(op, OP.sum_all)
    mean_all = partialmethod(op, OP.mean_all)
    size = partialmethod(op, OP.size)
    sum_features = partialmethod(op, OP.sum_features)
    softmax = partialmethod(op, OP.softmax)
    log_softmax = partialmethod(op, OP.log_softmax)


@dataclass(frozen=True)
class Term:
    """A node of a formula: arithmetic on terms (and numbers) adds the nodes it computes."""

    formula: Formula
    node: int

    def __sub__(self, other) -> Term:
        return self.formula.op(OP.sub, self, other)

    def __mul__(self, other) -> Term:
        return self.formula.op(OP.mul, self, other)

    def __truediv__(self, other) -> Term:
        return self.formula.op(OP.div, self, other)

    def __neg__(self) -> Term:
        return self.formula.op(OP.neg, self)

    def named(self, place: str) -> Term:
        """This term, named: the name a backend gives the variable that holds it."""
        self.formula.graph.update(self.node, place=place)
        return self


def _mse(f: Formula, pred: Term, target: Term) -> Term:
    error = (pred - target).named("error")
    return f.mean_all(error * error)


def _mse_grad(f: Formula, g: Term, pred: Term, target: Term) -> Term:
    # d mean((p - t)²) = 2 (p - t) / N
    return g * 2 * (pred - target).named("error") / f.size(pred)


def _cross_entropy(f: Formula, logits: Term, target: Term) -> Term:
    return -f.mean_all(f.sum_features(target * f.log_softmax(logits)))


def _cross_entropy_grad(f: Formula, g: Term, logits: Term, target: Term) -> Term:
    # d mean(-Σ t log softmax(z)) = (softmax(z) Σt - t) / rows (softmax(z) - t where the
    # targets sum to one)
    total = f.sum_features(target).named("target_total")
    return g * (f.softmax(logits) * total - target) / f.size(total)


def _masked_mse(f: Formula, pred: Term, target: Term, mask: Term) -> Term:
    error = (pred - target).named("error")
    return f.sum_all(mask * (error * error)) / _counted(f, pred, mask)


def _masked_mse_grad(f: Formula, g: Term, pred: Term, target: Term, mask: Term) -> Term:
    return g * 2 * mask * (pred - target).named("error") / _counted(f, pred, mask)


def _counted(f: Formula, pred: Term, mask: Term) -> Term:
    """How many elements count: the steps the mask keeps, times the features."""
    return (f.sum_all(mask) * f.features(pred)).named("counted")


def _masked_cross_entropy(f: Formula, logits: Term, target: Term, mask: Term) -> Term:
    per_row = f.sum_features(target * f.log_softmax(logits))
    return -(f.sum_all(mask * per_row) / f.sum_all(mask).named("counted"))


def _masked_cross_entropy_grad(f: Formula, g: Term, logits: Term, target: Term,
                               mask: Term) -> Term:
    total = f.sum_features(target).named("target_total")
    return g * mask * (f.softmax(logits) * total - target) / f.sum_all(mask).named("counted")


# loss op -> its formula, (formula, *args) -> the term of its value
FORMULAS = {
    OP.mse: _mse,
    OP.mse_grad: _mse_grad,
    OP.cross_entropy: _cross_entropy,
    OP.cross_entropy_grad: _cross_entropy_grad,
    OP.masked_mse: _masked_mse,
    OP.masked_mse_grad: _masked_mse_grad,
    OP.masked_cross_entropy: _masked_cross_entropy,
    OP.masked_cross_entropy_grad: _masked_cross_entropy_grad,
}
