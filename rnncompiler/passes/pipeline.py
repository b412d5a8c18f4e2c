"""The order of the optimisation passes, by level (``rnnc compile -O0|-O1|-O2``).

- O0: the graph as the unroller and the autodiff wrote it.
- O1: dead nodes removed.
- O2: also the products rewritten for speed: gate products fused into one product with
  stacked weights, input products hoisted out of the loops (one product over all steps),
  weight gradients batched into one product over all steps; then dead nodes removed.

Each pass is ``Graph -> bool`` (changed); the pipeline runs each to a fixed point, with
a cap, and can verify the graph after every pass.
"""

from __future__ import annotations

from ..graph import Graph
from .batch_weight_gradients import batch_weight_gradients
from .eliminate_dead_nodes import eliminate_dead_nodes
from .fuse_gate_products import fuse_gate_products
from .hoist_input_products import hoist_input_products

LEVELS = {
    0: [],
    1: [eliminate_dead_nodes],
    2: [fuse_gate_products, hoist_input_products, batch_weight_gradients,
        eliminate_dead_nodes],
}
MAX_ROUNDS = 8


def optimize(graph: Graph, level: int = 2, verify: bool = False) -> dict[str, int]:
    """Run the passes of ``level`` in order; returns how many rounds changed each."""
    report = {}
    for rewrite in LEVELS[level]:
        rounds = 0
        while rounds < MAX_ROUNDS and rewrite(graph):
            rounds += 1
            if verify:
                graph.verify()
        report[rewrite.__name__] = rounds
    return report
