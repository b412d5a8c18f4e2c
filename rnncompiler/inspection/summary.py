"""`rnnc inspect --format text`: what the unrolled graph holds, per layer and step; the
parameters and how many steps share each; FLOPs and activation memory per example."""

from __future__ import annotations

from collections import Counter

import networkx as nx
import numpy as np

from ..ir.graph import Graph
from ..ir.ops import OP

ELEMENTWISE_COST = {OP.softmax: 3, OP.sigmoid: 4, OP.log: 1, OP.exp: 1, OP.tanh: 1}


def flops(graph: Graph, node: int) -> int:
    """Floating-point operations of one node for one example."""
    data = graph[node]
    op = data.op
    shapes = [graph[a].shape for a in graph.args(node)]
    if op in (OP.matvec, OP.matvec_t):
        matrix, vector = shapes
        return 2 * matrix[0] * matrix[1] * int(np.prod(vector[:-1] or (1,)))
    if op == OP.outer_sum:
        return 2 * int(np.prod(shapes[0])) * shapes[1][-1]
    if op in (OP.input, OP.param, OP.const, OP.take_step, OP.stack_steps, OP.identity, OP.zeros,
              OP.zeros_shaped, OP.slice_features, OP.concat, OP.stack_rows, OP.repeat_steps):
        return 0
    return ELEMENTWISE_COST.get(op, 1) * int(np.prod(data.shape or (1,)))


def summarize(graph: Graph, title: str, report: list | None = None) -> str:
    lines = [f"{title}: {len(graph)} nodes, {graph.nx.number_of_edges()} edges"]
    lines += _blocks(graph)
    lines += _parameters(graph)
    gradient: set[int] = set()
    if "loss" in graph.outputs:  # a training graph: what the loss does not depend on
        forward = nx.ancestors(graph.nx, graph.outputs["loss"]) | {graph.outputs["loss"]}
        gradient = set(graph.nx.nodes) - forward
    forward = sum(flops(graph, n) for n in graph.nx.nodes if n not in gradient)
    backward = sum(flops(graph, n) for n in gradient)
    lines.append(f"FLOPs per example: forward {forward:,}"
                 + (f", backward {backward:,}" if gradient else ""))
    size = np.dtype(graph.dtype).itemsize
    if gradient:
        kept = {a for n in gradient for a in graph.args(n)
                if a not in gradient and graph[a].batched}
        values = sum(int(np.prod(graph[a].shape)) for a in kept)
        lines.append(f"activation memory per example kept for the backward pass: "
                     f"{values * size / 1024:,.1f} KiB ({values:,} values)")
    else:
        values = sum(int(np.prod(d.shape or (1,))) for _, d in graph.items()
                     if d.batched and d.op != OP.input)
        lines.append(f"activation memory per example (every value): "
                     f"{values * size / 1024:,.1f} KiB")
    if report is not None:
        lines.append("passes:" + ("" if report else " none"))
        lines += [f"  {result.describe()}" for result in report]
    return "\n".join(lines) + "\n"


def _blocks(graph: Graph) -> list[str]:
    lines = []
    for name, block in graph.blocks.items():
        per_step = Counter(d.op for _, d in graph.items()
                           if d.block == name and d.step == block.order[0])
        kind = (f"gradients of {block.gradient_of}" if block.gradient_of else
                f"{block.cell or 'dense'}, {'backward' if block.backward else 'forward'}")
        ops = ", ".join(f"{op} {count}" for op, count in sorted(per_step.items()))
        lines.append(f"block {name} ({kind}): {block.steps} steps x {sum(per_step.values())} "
                     f"nodes: {ops}")
    outside = Counter(d.op for _, d in graph.items() if d.step is None)
    lines.append("outside the loops: " + ", ".join(f"{op} {count}"
                                                   for op, count in sorted(outside.items())))
    return lines


def _parameters(graph: Graph) -> list[str]:
    total = sum(int(np.prod(graph[n].shape)) for n in graph.params.values())
    lines = [f"parameters: {len(graph.params)} arrays, {total:,} values"]
    width = max((len(name) for name in graph.params), default=0)
    for name, node in graph.params.items():
        shape = graph[node].shape
        steps = {graph[u].step for u in graph.users(node) if graph[u].step is not None}
        shared = f"shared by {len(steps)} steps" if steps else "used outside the loops"
        lines.append(f"  {name:<{width}}  {list(shape)!s:<12} {int(np.prod(shape)):>9,}  "
                     f"{shared}")
    return lines
