"""The order of the optimisation passes, by level (``rnnc compile -O0|-O1|-O2``).

- O0: the graph as the unroller and the autodiff wrote it, but for its losses, which are
  decomposed into primitive ops (at every level, first: backends lower no loss op).
- O1: the rewrites that never cost anything: algebra simplified (``x + 0``, the zeros of
  gradient rules), common subexpressions merged (``p - t``, once for the loss and its
  gradient), dead nodes removed.
- O2: also the products rewritten for speed: gate products fused into one product with
  stacked weights, input products hoisted out of the loops (one product over all steps),
  weight gradients batched into one product over all steps, elementwise ops on the
  slices of a fused product fused into one op over its range, loop weights transposed
  once for the products; then O1's clean-up again
  (fusing makes stacked weights that the forward and backward loops share).

Each pass is ``Graph -> bool`` (changed); the pipeline runs each to a fixed point, with
a cap, and can verify the graph after every pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir.graph import Graph
from .batch_weight_gradients import batch_weight_gradients
from .decompose_losses import decompose_losses
from .eliminate_common_subexpressions import eliminate_common_subexpressions
from .eliminate_dead_nodes import eliminate_dead_nodes
from .fuse_elementwise import fuse_elementwise
from .fuse_gate_products import fuse_gate_products
from .hoist_input_products import hoist_input_products
from .hoist_invariant_terms import hoist_invariant_terms
from .simplify_algebra import simplify_algebra
from .transpose_loop_weights import transpose_loop_weights

CLEAN_UP = [simplify_algebra, eliminate_common_subexpressions, eliminate_dead_nodes]
LEVELS = {
    0: [decompose_losses],
    1: [decompose_losses, *CLEAN_UP],
    2: [decompose_losses, *CLEAN_UP, fuse_gate_products, hoist_input_products,
        batch_weight_gradients, fuse_elementwise, hoist_input_products, hoist_invariant_terms,
        transpose_loop_weights, *CLEAN_UP],
}
MAX_ROUNDS = 8
# passes that finish their work in one run (a second would change nothing): run once;
# fuse_elementwise works one level of a chain a run (the additions, then the activation)
COMPLETE = {decompose_losses, simplify_algebra, eliminate_common_subexpressions,
            eliminate_dead_nodes, fuse_gate_products, hoist_input_products,
            hoist_invariant_terms, batch_weight_gradients, transpose_loop_weights}


@dataclass
class PassResult:
    """What one pass of the pipeline did."""

    name: str
    rounds: int  # rounds that changed the graph
    nodes_before: int
    nodes_after: int
    ops_before: dict
    ops_after: dict

    def describe(self) -> str:
        if not self.rounds:
            return f"{self.name}: no change"
        changes = [f"{op} {self.ops_before.get(op, 0)} -> {self.ops_after.get(op, 0)}"
                   for op in sorted(self.ops_before.keys() | self.ops_after.keys())
                   if self.ops_before.get(op, 0) != self.ops_after.get(op, 0)]
        return (f"{self.name}: {self.nodes_before} -> {self.nodes_after} nodes"
                + (f" ({', '.join(changes)})" if changes else ""))


def optimize(graph: Graph, level: int = 2, verify: bool = False,
             count_ops: bool = False) -> list[PassResult]:
    """Run the passes of ``level`` in order; returns what each one changed (with
    ``count_ops``, how many nodes of each op it made or removed)."""
    report = []
    for rewrite in LEVELS[level]:
        before, ops_before = len(graph), _op_counts(graph) if count_ops else {}
        rounds = 0
        while rounds < MAX_ROUNDS and rewrite(graph):
            rounds += 1
            if verify:
                graph.verify()
            if rewrite in COMPLETE:
                break
        report.append(PassResult(rewrite.__name__, rounds, before, len(graph), ops_before,
                                 _op_counts(graph) if rounds and count_ops else ops_before))
    return report


def _op_counts(graph: Graph) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, data in graph.items():
        counts[data.op] = counts.get(data.op, 0) + 1
    return counts
