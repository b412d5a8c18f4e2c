"""``native`` mode: recurrent layers of built-in cells as ONNX's own RNN / LSTM / GRU.

The conventions (the built-in cells' parameter names, docs/spec.md, on the left; ONNX's
gate order on the right):

| cell | ONNX op | gates of W, R | B = [Wb, Rb] |
|---|---|---|---|
| simple | RNN | W_xh / W_hh | [b_h, 0] |
| lstm | LSTM | i, o, f, c | [b_i, b_o, b_f, b_c, 0, 0, 0, 0] |
| gru | GRU, linear_before_reset=1 | z, r, n | [b_z, b_r, b_xn, 0, 0, b_hn] |
| gru_reset_before | GRU, linear_before_reset=0 | z, r, n | [b_z, b_r, b_n, 0, 0, 0] |

Both directions of a bidirectional layer become one op (``direction="bidirectional"``).
ONNX wants [T, batch, n]; the model transposes in and out of its batch-first layout.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from rnncompiler.errors import RnncError
from rnncompiler.ir.ops import OP
from rnncompiler.lowering import LoopPlan, Plan

GATES = {  # cell -> (ONNX op, gate suffixes in ONNX order, biases in ONNX order)
    "simple": ("RNN", ["h"], lambda b, z: [b["b_h"], z]),
    "lstm": ("LSTM", ["i", "o", "f", "c"],
             lambda b, z: [b["b_i"], b["b_o"], b["b_f"], b["b_c"], z, z, z, z]),
    "gru": ("GRU", ["z", "r", "n"], lambda b, z: [b["b_z"], b["b_r"], b["b_xn"], z, z, b["b_hn"]]),
    "gru_reset_before": ("GRU", ["z", "r", "n"],
                         lambda b, z: [b["b_z"], b["b_r"], b["b_n"], z, z, z]),
}

# the cells ``auto`` maps: onnxruntime's RNN operator took 1.4-4x the time of the Scan of
# a simple cell (docs/onnx.md), so ``auto`` keeps those Scans
FASTER_THAN_SCAN = ("lstm", "gru", "gru_reset_before")

# the places whose steps the operator's output Y holds: h, or with lengths h up to each
# example's length and zeros after it
OUTPUT_PLACES = {"h", "length.out"}


class NativeLayers:
    """Maps the loops of recurrent layers onto ONNX's operators. ``strict`` (``native``
    mode): a layer that cannot be mapped is an error; otherwise (``auto``) it stays a
    ``Scan``."""

    def __init__(self, emitter, program: Plan, strict: bool = True):
        self.emitter = emitter
        self.loops = program.loops
        self.strict = strict
        self.done: set[str] = set()

    def takes(self, loop: LoopPlan) -> bool:
        block = loop.block
        if block.cell is None or block.gradient_of:
            return False  # a dense layer at every step, or a gradient: not a cell
        if not self.strict and block.cell not in FASTER_THAN_SCAN:
            return False
        reason = self.unmapped(loop)
        if reason is not None and self.strict:
            raise RnncError(f"--onnx-mode native maps layer {block.layer} onto ONNX's own "
                            f"operator, but {reason} (use --onnx-mode scan)")
        return reason is None

    def unmapped(self, loop: LoopPlan) -> str | None:
        """Why the loop cannot be ONNX's operator; None when it can."""
        block, graph = loop.block, self.emitter.graph
        if block.feedback:
            return f"the operator cannot feed back the output of dense layer {block.feedback}"
        if block.cell not in GATES:
            return f"it uses the custom cell '{block.cell}' (the operators are the built-in cells')"
        if graph.dtype != "float32":
            return "onnxruntime's RNN, LSTM and GRU operators have no float64"
        states = ["h", "c"] if block.cell == "lstm" else ["h"]
        parts = self.parts(loop)
        for part in parts:
            if part.block.name not in graph.sources or any(
                    (part.block.name, s) not in graph.starts for s in states):
                return "the compiler lost track of its input or its initial state"
            if set(part.collected.values()) - OUTPUT_PLACES or part.loop.finals - set(states) \
                    or part.loop.saved or part.loop.saved_in:
                return "other layers read more of its steps than its output and final states"
            if any(s not in part.iterations[-1] for s in states):
                return "its steps do not compute every state"
        return None

    def parts(self, loop: LoopPlan) -> list[LoopPlan]:
        """The loops of the layer's directions (one op computes both)."""
        return [other for other in self.loops if other.block.layer == loop.block.layer
                and other.block.cell == loop.block.cell and not other.block.gradient_of]

    def emit(self, loop: LoopPlan) -> None:
        if loop.block.name in self.done:
            return
        parts = self.parts(loop)
        self.done |= {part.block.name for part in parts}
        e, b = self.emitter, self.emitter.b
        op_type, gates, biases = GATES[loop.block.cell]
        units = self.units(loop)
        packed = [self.pack(part, gates, biases, units) for part in parts]
        names = {}
        for index, key in enumerate(("W", "R", "B")):
            per_direction = [b.op("Unsqueeze", [p[index], b.ints([0])]) for p in packed]
            names[key] = per_direction[0] if len(packed) == 1 else \
                b.op("Concat", per_direction, axis=0, hint=f"{loop.block.layer}.{key}")
        sequence = b.op("Transpose", [self.sequence(loop)], perm=[1, 0, 2])
        inputs = [sequence, names["W"], names["R"], names["B"], self.sequence_lens(loop)]
        states = ["h", "c"] if op_type == "LSTM" else ["h"]
        for state in states:
            # the graph's record of each start (a loop of one step carries nothing)
            starts = [b.op("Unsqueeze", [e.value(e.graph.starts[(part.block.name, state)]),
                                         b.ints([0])]) for part in parts]
            inputs.append(starts[0] if len(starts) == 1 else b.op("Concat", starts, axis=0))
        direction = "bidirectional" if len(parts) == 2 else (
            "reverse" if loop.block.backward else "forward")
        attrs = {"hidden_size": units, "direction": direction}
        if loop.block.cell == "gru":
            attrs["linear_before_reset"] = 1
        outputs = b.op(op_type, inputs, outputs=1 + len(states), hint=loop.block.layer, **attrs)
        self.bind(parts, outputs, states)

    def sequence_lens(self, loop: LoopPlan) -> str:
        """Variable lengths: the examples' lengths as ONNX's ``sequence_lens`` (the op then
        keeps each state past its example's length and writes zeros there, as the graph
        does); else none."""
        e = self.emitter
        masks = {arg.ref for args in loop.args.values() for arg in args  # (x[t] of it)
                 if arg.kind in ("invariant", "slice") and e.graph[arg.ref].op == OP.sequence_mask}
        if not masks:
            return ""
        (mask,) = masks  # the sequence_mask the loop reads a step of
        lengths = e.graph.args(mask)[0]
        return e.b.op("Cast", [e.value(lengths)], to=TensorProto.INT32)

    def units(self, loop: LoopPlan) -> int:
        return self.emitter.graph[loop.iterations[-1]["h"]].shape[-1]

    def sequence(self, loop: LoopPlan) -> str:
        """The layer's input as a batch-first sequence (a vector fed at every step is tiled)."""
        e, b = self.emitter, self.emitter.b
        source = e.graph.sources[loop.block.name]
        if len(e.graph[source].shape) == 2:  # [T, n]
            return e.value(source)
        tiled = b.op("Unsqueeze", [e.value(source), b.ints([1])])
        repeats = b.op("Concat", [b.ints([1]), e.context.steps(b, loop.block.steps,
                                                                 loop.block.follows_steps),
                                  b.ints([1])], axis=0)
        return b.op("Tile", [tiled, repeats])

    def pack(self, loop: LoopPlan, gates, biases, units: int):
        """W [G*H, I], R [G*H, H], B [2*G*H] of one direction, concatenated in the model
        from the spec's parameters (which stay the model's inputs)."""
        b, prefix = self.emitter.b, f"{loop.block.name}."
        x_names = ["W_xh"] if gates == ["h"] else [f"W_x{g}" for g in gates]
        h_names = ["W_hh"] if gates == ["h"] else [f"W_h{g}" for g in gates]
        mine = {name: prefix + name for name in self.cell_params(loop)}
        zero = b.constant(np.zeros(units))
        return (b.op("Concat", [mine[n] for n in x_names], axis=0),
                b.op("Concat", [mine[n] for n in h_names], axis=0),
                b.op("Concat", biases(mine, zero), axis=0))

    def cell_params(self, loop: LoopPlan) -> list[str]:
        prefix = f"{loop.block.name}."
        return [key[len(prefix):] for key in self.emitter.graph.params
                if key.startswith(prefix) and "." not in key[len(prefix):]]

    def bind(self, parts, outputs, states) -> None:
        """Y [T, D, batch, H] and the final states back to the graph's nodes."""
        e, b = self.emitter, self.emitter.b
        y, finals = outputs[0], dict(zip(states, outputs[1:]))
        for d, part in enumerate(parts):
            for stack in part.collected:
                e.time_major.values[stack] = b.op("Gather", [y, b.ints(d)], axis=1)
            for state in states:
                last = part.iterations[-1][state]
                e.values[last] = b.op("Gather", [finals[state], b.ints(d)], axis=0)
