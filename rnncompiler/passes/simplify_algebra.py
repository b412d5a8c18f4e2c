"""Algebraic simplification: ``x + 0``, ``x - 0``, ``x * 1``, ``x / 1``, ``--x``,
``identity(x)`` become ``x``; a step taken from a sequence that is zero but at one step
(``scatter_step``, the gradient rules' way to say "this step's output was used") becomes
that step's gradient there and zero elsewhere.

Zeros are found by a forward analysis (``zeros``, a constant 0, a product or slice of a
zero, the steps of a ``scatter_step`` it does not fill, ...); no zero is ever computed,
the additions of them disappear. The typical win: a many-to-one network's backward loop
added ``dL/dh_T`` scattered into a sequence of zeros at every step; now its carried
gradient starts from ``dL/dh_T`` and the sequence of zeros is gone.

Safe for values always (each rule is an identity of IEEE arithmetic, ``x + 0 = x`` up to
the sign of a zero); for loops, a place is rewritten only where the result is periodic.
"""

from __future__ import annotations

from ..ir import ops
from ..ir.graph import Graph
from ..ir.ops import OP
from .places import LoopBodies

ZERO_SOURCES = ops.having("zero_source")
# ops whose value is zero where (all, or any) of their arguments are
ZERO_IF_ANY = ops.having("zero_if_any")
ZERO_IF_ALL = ops.having("zero_if_all")


def simplify_algebra(graph: Graph) -> bool:
    order = graph.evaluation_order()
    zero = _zeros(graph, order)
    target = {}
    for node in order:
        found = _equal_to(graph, node, zero)
        if found is not None:
            target[node] = target.get(found, found)  # follow chains already found
    accepted, _ = LoopBodies(graph).replacements(target)
    for node in order:  # resolve chains through what was accepted, then substitute
        if node in accepted:
            new = accepted[node]
            while new in accepted:
                new = accepted[new]
            graph.substitute(node, new)
    return bool(accepted)


def _zeros(graph: Graph, order: list[int]) -> set[int]:
    zero = set()
    for node in order:
        data = graph[node]
        args = graph.args(node)
        op = data.op
        if op in ZERO_SOURCES or (op == OP.const and data.attrs["value"] == 0.0) \
                or (op in ZERO_IF_ANY and any(a in zero for a in args)) \
                or (op in ZERO_IF_ALL and args and all(a in zero for a in args)):
            zero.add(node)
        elif op == OP.take_step and graph[args[0]].op == OP.scatter_step \
                and graph[args[0]].attrs["index"] != data.attrs["index"]:
            zero.add(node)
    return zero


def _one(graph: Graph, node: int) -> bool:
    data = graph[node]
    return data.op == OP.const and data.attrs["value"] == 1.0


# The identities, as data: op -> [(argument that must be zero or one, its kind, the argument
# the op then equals)], tried in order; None: the op always equals that argument.
IDENTITIES = {
    OP.add: [(0, "zero", 1), (1, "zero", 0)],  # 0 + x, x + 0
    OP.sub: [(1, "zero", 0)],  # x - 0
    OP.mul: [(1, "one", 0), (0, "one", 1)],  # x * 1, 1 * x
    OP.div: [(1, "one", 0)],  # x / 1
    OP.identity: [(None, None, 0)],
}
# and two of an op over another: -(-x) = x; the step i of a sequence that is zero but at
# step i is that step's value
NESTED = {OP.neg: (OP.neg, None), OP.take_step: (OP.scatter_step, "index")}


def _equal_to(graph: Graph, node: int, zero: set[int]) -> int | None:
    """An existing node that ``node`` always equals, if a rule says so."""
    data = graph[node]
    op, args = data.op, graph.args(node)
    is_kind = {"zero": lambda n: n in zero, "one": lambda n: _one(graph, n)}
    candidates = [args[result] for given, kind, result in IDENTITIES.get(op, ())
                  if given is None or is_kind[kind](args[given])]
    if op in NESTED:
        inner, same = NESTED[op]
        below = graph[args[0]]
        if below.op == inner and (same is None or
                                     below.attrs[same] == data.attrs[same]):
            candidates = graph.args(args[0])
    for candidate in candidates:  # the same value only if also the same shape
        other = graph[candidate]
        if other.shape == data.shape and other.batched == data.batched:
            return candidate
    return None
