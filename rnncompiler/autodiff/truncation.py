"""Truncated BPTT (docs/spec.md, Unrolling and BPTT): the lanes cotangents run in, and where
the carry between steps is cut.

- ``full``: one lane; exact.
- ``{chunk: k}``: one lane; the carry is zeroed where it would cross between steps j*k-1
  and j*k.
- ``{window: k}``: cotangents run in k lanes by age: an error enters at lane 0 at its own
  step and moves one lane up each step it travels back; lane k is dropped. Each lane costs
  one backward pass of the cell, so window costs O(T*k) against full's O(T)."""

from __future__ import annotations

from ..frontend.spec import UnrollSpec
from ..ir.graph import Block, Graph
from ..ir.ops import OP


class Truncation:
    def __init__(self, unroll: UnrollSpec, loops: dict):
        self.mode, self.k = unroll.bptt, unroll.k
        longest = sum(loop.block.steps for loop in loops.values() if loop.carried)
        if self.mode == "window" and self.k >= longest:
            self.mode = "full"  # no error can travel k steps: nothing to truncate
        self.lanes = self.k if self.mode == "window" else 1

    def has_carry(self, lane: int) -> bool:
        """Whether a state's cotangent in ``lane`` takes a carry from the next step (lane 0
        of a window holds only what the step itself sends)."""
        return self.mode != "window" or lane > 0

    def next_lane(self, lane: int) -> int | None:
        """The lane of a cotangent once it has travelled one step further back; None once
        it leaves the window."""
        if self.mode != "window":
            return lane
        return lane + 1 if lane + 1 < self.lanes else None

    def cut(self, graph: Graph, carry: int, name: str, where: dict, block: Block) -> int:
        """``carry`` as it crosses to the previous step: zeroed at chunk boundaries."""
        if self.mode != "chunk":
            return carry
        return graph.add(OP.cut_chunk, [carry], place=f"{name}.cut", **where,
                         index=where["step"], chunk=self.k, shift=1 if block.backward else 0,
                         steps=block.steps, dynamic=block.follows_steps)
