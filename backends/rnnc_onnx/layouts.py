"""Sequences time-major in ``scan`` models: [T, batch, n] wherever Scans read or write them.

onnxruntime's Scan runs along the first axis: a scan input or output along any other axis
is transposed into a copy at every run. So what a Scan writes stays [T, batch, n] (the
values a backward Scan reads step by step, a sequence the next layer reads) and becomes
batch-first only where something else reads it; what a Scan reads is made time-major at
its source (a hoisted input product transposes its input, the smallest array on the way);
and the sums over every example and step (weight and bias gradients) take either layout.
"""

from __future__ import annotations

from rnncompiler.ir import ops
from rnncompiler.ir.ops import OP

from .lowering import shift_steps_along

# ops on each example's step alone (elementwise, or along the features), whose other
# arguments are the same for every example (weights, biases, constants): the same ops
# compute either layout
ROW_WISE = ops.having("per_example")
# sums and means over every example and step (losses, weight and bias gradients)
LAYOUT_FREE = ops.having("layout_free")


class TimeMajor:
    def __init__(self, emitter):
        self.emitter = emitter
        self.graph = emitter.graph
        self.values: dict[int, str] = {}  # graph node -> its sequence as [T, batch, n]

    def is_sequence(self, node: int) -> bool:
        data = self.graph[node]
        return data.batched and len(data.shape) == 2

    def possible(self, node: int) -> bool:
        """Whether ``node`` is time-major already, or can be made so without transposing
        anything but an input."""
        graph, data = self.graph, self.graph[node]
        if node in self.values:
            return True
        if not self.is_sequence(node):
            return False
        if data.op == OP.input:
            return True
        if node in self.emitter.values:  # made batch-first already
            return False
        args = graph.args(node)
        if data.op == OP.shift_steps:
            return self.possible(args[0])
        return data.op in ROW_WISE and all(
            self.possible(a) if self.is_sequence(a) else not graph[a].batched for a in args)

    def value(self, node: int) -> str | None:
        """``node``'s sequence as [T, batch, n], made where possible; else None."""
        if not self.possible(node):
            return None
        if node not in self.values:
            emitter, data = self.emitter, self.graph[node]
            args = self.graph.args(node)
            if data.op == OP.input:
                made = emitter.b.op("Transpose", [emitter.value(node)], perm=[1, 0, 2],
                                    hint="time_major")
            elif data.op == OP.shift_steps:
                made = shift_steps_along(emitter.b, self.value(args[0]), emitter.value(args[1]),
                                         data.attrs["backward"], axis=0)
            else:
                made = emitter.lower(node, emitter.b, self.args(node))
            self.values[node] = made
        return self.values[node]

    def takes_all(self, node: int) -> bool:
        """Whether a sum over every example and step reads its sequences time-major: one
        of them is, or is computed row-wise from one that is (a loss: the sum of
        ``(p - t)²``), and the others can be."""
        sequences = [a for a in self.graph.args(node) if self.is_sequence(a)]
        return any(map(self.from_time_major, sequences)) and all(map(self.possible, sequences))

    def from_time_major(self, node: int) -> bool:
        """Whether ``node`` is time-major already, or row-wise ops of one that is."""
        if node in self.values:
            return True
        data = self.graph[node]
        return data.op in ROW_WISE and node not in self.emitter.values and any(
            self.from_time_major(a) for a in self.graph.args(node) if self.is_sequence(a))

    def args(self, node: int) -> list[str]:
        emitter = self.emitter
        return [self.value(a) if self.is_sequence(a) else emitter.value(a)
                for a in self.graph.args(node)]
