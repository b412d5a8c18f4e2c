"""Spec -> forward Graph: every layer applied at every step, with the weights shared.

Values flow between layers as whole nodes: a vector ``[batch, n]`` or a stacked sequence
``[batch, T, n]``. A recurrent layer takes its step ``t`` with ``take_step`` inside its
own block, so each block (a layer, or one direction of it) is a self-contained recurrence
that a backend can re-roll into a loop.
"""

from __future__ import annotations

import functools

import numpy as np

from ..errors import SpecError
from ..frontend import equations as eq
from ..frontend.layers import LayerSpec
from ..frontend.params import layer_input_features, param_infos
from ..frontend.spec import Spec
from ..ir import ops
from ..ir.graph import Block, Graph
from ..ir.ops import OP
from .dropout import RecurrentDropout, apply_mask, mask_name
from .inputs import add_array_input, add_lengths, add_lengths_input, length_mask
from .maps import map_steps


def resolve_steps(spec: Spec, steps: int | None) -> int:
    """T: the override if given, else ``unroll.steps``."""
    steps = steps if steps is not None else spec.unroll.steps
    if steps is None:
        raise SpecError("the number of steps is unknown: set `unroll: {steps: T}` in the spec "
                        "or pass --steps", spec.source.loc(("unroll",)))
    return steps


def unroll(spec: Spec, steps: int | None = None, state_io: bool = False,
           dropout: bool = False) -> Graph:
    """The forward graph of ``spec`` unrolled over T steps (``steps`` or ``unroll.steps``).
    With ``state_io``, the states that would start from zeros start from inputs named
    ``<layer>.<state>0`` instead (streaming: feed back the final states of the last call).
    With ``dropout`` (a training graph), dropout multiplies by mask inputs
    (``build/dropout.py``); without, it is the identity."""
    unroller = _Unroller(spec, steps if steps is not None else spec.unroll.steps)
    unroller.state_io = state_io
    unroller.dropout = dropout
    return unroller.build()


def state_inputs(spec: Spec) -> dict[str, int]:
    """The inputs ``--state-io`` adds: ``<layer>.<state>0`` -> units, for every state that
    the spec starts from zeros, and ``<dense>.fed0`` for the value a ``feedback`` layer
    feeds back before its first step."""
    names = {}
    for layer in spec.layers:
        if layer.type != "rnn":
            continue
        for direction in layer.directions:
            for state in spec.cells[layer.cell].states:
                key = f"{direction}.{state}" if direction else state
                if key not in layer.initial_state:
                    names[f"{layer.name}.{key}0"] = layer.units
        if layer.feedback:  # what is fed back before the first step (its dense's output)
            names[f"{layer.feedback}.fed0"] = spec.layer(layer.feedback).units
    return names


class _Unroller:
    def __init__(self, spec: Spec, steps: int | None):
        self.spec = spec
        self.steps = steps
        self.graph = Graph(spec.name, spec.dtype)
        self.graph.steps = steps
        self.values: dict[str, int] = {}  # input or layer name -> node
        self.finals: dict[str, int] = {}  # '<layer>.<state>' -> node
        self.state_io = False
        self.dropout = False  # dropout's masks as inputs (a training graph)
        self.masks: dict[str, int] = {}  # sequence with variable lengths -> its mask [T, 1]
        self.generated: dict[str, int] = {}  # a dense layer fed back -> its sequence
        self.zero_states: dict[str, int] = {}  # layer -> zeros [batch, units]
        self.id_lengths: dict[str, int] = {}  # class ids with variable lengths -> lengths

    def build(self) -> Graph:
        graph = self.graph
        for name, array in self.spec.inputs.items():
            self.values[name] = add_array_input(graph, array, self.length(array.steps)
                                                if array.sequence else None)
            if array.sequence and array.steps is None:
                graph.follows_steps.add(name)
            if array.lengths and array.classes is None:
                self.masks[name] = add_lengths(graph, name, self.values[name])
            elif array.lengths:  # masked where embedded
                self.id_lengths[name] = add_lengths_input(graph, name)
        for info in param_infos(self.spec):
            graph.add_param(info.key, info.shape, info.init, info.layer, info.zero_row)
        for layer in self.spec.layers:
            self.values[layer.name] = getattr(self, f"build_{layer.type}")(layer)
            graph.layer_values[layer.name] = self.values[layer.name]
            if layer.output.sequence and layer.output.steps is None:
                graph.follows_steps.add(layer.name)
        graph.masks = dict(self.masks)
        for name in self.spec.outputs:
            graph.outputs[name] = self.values[name]
        graph.outputs.update(self.finals)
        return graph

    @property
    def batch_ref(self) -> int:
        """A node with the batch axis: the first input (of a spec made of states, a state)."""
        return next(iter(self.graph.inputs.values()))

    def length(self, steps: int | None) -> int:
        if steps is not None:
            return steps
        return resolve_steps(self.spec, self.steps)

    # --- layers ---------------------------------------------------------------------
    def build_rnn(self, layer: LayerSpec) -> int:
        cell = self.spec.cells[layer.cell]
        steps = self.length(layer.output.steps)
        source = self.values[layer.input] if layer.input is not None else None
        mask = self.masks.get(layer.input)
        if mask is not None and layer.returns == "sequence":
            self.masks[layer.name] = mask
        results = []
        for direction in layer.directions:
            block = f"{layer.name}.{direction}" if direction else layer.name
            backward = direction == "bwd" or layer.direction == "backward"
            self.graph.blocks[block] = Block(block, layer.name, steps, backward, cell.name,
                                             follows_steps=layer.output.steps is None,
                                             feedback=layer.feedback)
            results.append(self.build_recurrence(layer, cell, block, direction, source, mask))
        if len(results) == 1:
            return results[0]
        return self.graph.add(OP.concat, results, layer=layer.name)

    def build_recurrence(self, layer: LayerSpec, cell, block: str, direction: str,
                         source: int, mask: int | None = None) -> int:
        graph, info = self.graph, self.graph.blocks[block]
        prefix = f"{layer.name}.{direction}." if direction else f"{layer.name}."
        params = {name: graph.params[prefix + name] for name in cell.params}
        state = {s: self.initial_state(layer, direction, s) for s in cell.states}
        for name, start in state.items():  # (what ONNX native starts its operator from, at
            graph.starts[(block, name)] = start  # any T: a loop of one step carries nothing)
        if source is not None:  # (and the input it reads, whatever the passes make of it)
            graph.sources[block] = source
        outputs = {}
        sequence = source is not None and len(graph[source].shape) == 2
        fed_back, generated, invariants = None, {}, {}
        x_mask = self.dropout_input(layer.name, direction, "dropout", layer.dropout,
                                    (layer_input_features(self.spec, layer),))
        h_mask = self.dropout_input(layer.name, direction, "recurrent_dropout",
                                    layer.recurrent_dropout, (layer.units,))
        if layer.feedback:  # the dense layer's output at t-1, zeros before the first step
            dense = self.spec.layer(layer.feedback)  # (with state_io: the input <dense>.fed0)
            fed_back = graph.add_input(f"{dense.name}.fed0", (dense.units,)) if self.state_io \
                else graph.add(OP.zeros, [self.batch_ref], layer=layer.name, size=dense.units)
        for t in info.order:
            where = {"step": t, "layer": layer.name, "block": block}
            x_t = graph.add(OP.take_step, [source], place="x.in" if fed_back else "x", index=t,
                            **where) if sequence else source
            if fed_back is not None:
                parts = [x_t, fed_back] if x_t is not None else [fed_back]
                x_t = graph.add(OP.concat, parts, place="x", **where) if len(parts) > 1 \
                    else parts[0]
            if x_mask is not None:  # (places a cell's own names cannot take)
                x_t = graph.add(OP.mul, [x_t, x_mask], place="dropout.x", **where)
            new = _CellStep(graph, cell, params, x_t, state, where, invariants,
                            functools.partial(self.zeros, layer), h_mask).build()
            if mask is None:
                state = new
                outputs[t] = state[cell.output]
            else:  # variable lengths: past an example's length its state is kept, its output 0
                # (places a cell's own names cannot take: they are no identifiers)
                m = graph.add(OP.take_step, [mask], place="length.mask", index=t, **where)
                keep = graph.add(OP.sub, [graph.const(1.0), m], place="length.keep", **where)
                state = {name: _keep_past_length(graph, name, new[name], state[name], m, keep,
                                                 where) for name in cell.states}
                if layer.returns == "sequence":
                    outputs[t] = graph.add(OP.mul, [m, state[cell.output]], place="length.out",
                                           **where)
            if layer.feedback:
                fed_back = generated[t] = self.dense_step(
                    dense, outputs[t], graph.params[f"{dense.name}.W"],
                    graph.params[f"{dense.name}.b"], where, place=f"{dense.name}.")
        if layer.feedback:  # the dense layer's value: what the loop generated
            self.generated[dense.name] = graph.add(
                OP.stack_steps, [generated[t] for t in range(info.steps)], layer=dense.name)
        for name, node in state.items():
            self.finals[prefix + name] = node
        if layer.returns == "sequence":
            return graph.add(OP.stack_steps, [outputs[t] for t in range(info.steps)],
                             layer=layer.name)
        return state[cell.output]

    def zeros(self, layer: LayerSpec) -> int:
        """Zeros [batch, units] for ``layer``: one node, made where first needed."""
        if layer.name not in self.zero_states:
            self.zero_states[layer.name] = self.graph.add(OP.zeros, [self.batch_ref],
                                                          layer=layer.name, size=layer.units)
        return self.zero_states[layer.name]

    def initial_state(self, layer: LayerSpec, direction: str, state: str) -> int:
        key = f"{direction}.{state}" if direction else state
        source = layer.initial_state.get(key)
        if source is None and self.state_io:
            return self.graph.add_input(f"{layer.name}.{key}0", (layer.units,))
        if source is None:
            return self.graph.add(OP.zeros, [self.batch_ref], layer=layer.name, size=layer.units)
        if source in self.values:
            return self.values[source]
        return self.finals[source]

    def build_dense(self, layer: LayerSpec) -> int:
        if layer.name in self.generated:  # fed back: computed in its rnn layer's loop
            return self.generated[layer.name]
        graph = self.graph
        source = self.values[layer.input]
        weight, bias = graph.params[f"{layer.name}.W"], graph.params[f"{layer.name}.b"]
        if not layer.output.sequence:
            return self.dense_step(layer, source, weight, bias, {"layer": layer.name})
        steps = self.length(layer.output.steps)
        if layer.input in self.masks:
            self.masks[layer.name] = self.masks[layer.input]
        return map_steps(graph, layer, source, steps,
                         lambda t, x_t, where: self.dense_step(layer, x_t, weight, bias, where))

    def dense_step(self, layer: LayerSpec, x: int, weight: int, bias: int, where: dict,
                   place: str = "") -> int:
        graph = self.graph
        product = graph.add(OP.matvec, [weight, x], place=f"{place}W @ x", **where)
        node = graph.add(OP.add, [product, bias], place=f"{place}W @ x + b", **where)
        if layer.activation != "linear":
            node = graph.add(layer.activation, [node], place=f"{place}y",
                             **where)
        graph.update(node, comment=_dense_comment(layer))
        return node

    def build_embedding(self, layer: LayerSpec) -> int:
        """Each id's row of the table, for the whole sequence at once: no step reads
        another, so the layer is one node, outside every loop."""
        extra = {} if layer.padding_id is None else {"padding_id": layer.padding_id}
        node = self.graph.add(OP.embed, [self.graph.params[f"{layer.name}.W"],
                                         self.values[layer.input]], layer=layer.name, **extra)
        self.graph.update(node, comment="y = W[id]")
        if layer.input in self.id_lengths:
            self.masks[layer.name] = length_mask(self.graph, layer.input,
                                                 self.id_lengths[layer.input], node)
        return node

    def dropout_input(self, layer: str, direction: str, key: str, rate: float,
                      shape: tuple) -> int | None:
        """The mask input of a dropout at ``rate`` in a training graph; else None."""
        if not (self.dropout and rate):
            return None
        return self.graph.add_input(mask_name(layer, direction, key), shape)

    def build_dropout(self, layer: LayerSpec) -> int:
        """Its input; in a training graph, times the mask ``<layer>.dropout``, at every
        step of a sequence."""
        graph, source = self.graph, self.values[layer.input]
        if layer.input in self.masks:
            self.masks[layer.name] = self.masks[layer.input]
        mask = self.dropout_input(layer.name, "", "dropout", layer.rate, graph[source].shape)
        if mask is None:
            return source
        steps = self.length(layer.output.steps) if layer.output.sequence else None
        return apply_mask(graph, layer, source, mask, steps)

    def build_repeat(self, layer: LayerSpec) -> int:
        return self.graph.add(OP.repeat_steps, [self.values[layer.input]], layer=layer.name,
                              steps=layer.steps)


def _keep_past_length(graph: Graph, name: str, new: int, previous: int, mask: int, keep: int,
                      where: dict) -> int:
    """m * new + (1 - m) * previous: the new state at the example's steps, else the old."""
    graph.update(new, place=f"{name}.new")
    kept = graph.add(OP.add, [graph.add(OP.mul, [mask, new], place=f"{name}.m1", **where),
                             graph.add(OP.mul, [keep, previous], place=f"{name}.m2", **where)],
                     place=name, **where)
    graph.update(kept, comment=f"{name}[t] = {name}[t-1] past the example's length")
    return kept


def _dense_comment(layer: LayerSpec) -> str:
    inner = "W @ x + b"
    return f"y = {inner}" if layer.activation == "linear" else f"y = {layer.activation}({inner})"


class _CellStep(RecurrentDropout):
    """One step of a cell: its equations turned into graph nodes."""

    def __init__(self, graph: Graph, cell, params: dict, x_t: int, previous: dict, where: dict,
                 invariants: dict, zeros, recurrent_mask: int | None = None):
        self.graph = graph
        self.mask_recurrence(cell, recurrent_mask)
        self.invariants = invariants  # (op, args) -> its node, shared by every step
        self.zeros = zeros  # () -> zeros [batch, units], to give a state its batch axis
        self.cell = cell
        self.params = params
        self.x_t = x_t
        self.previous = previous
        self.where = where
        self.current: dict[str, int] = {}
        self.locals: dict[str, int] = {}

    def build(self) -> dict:
        for equation in self.cell.equations:
            self.counter = 0
            self.target = equation.target
            node = self.node(equation.expr)
            data = self.graph[node]
            if (data.op == OP.const or node in self.hoisted) and not equation.is_state:
                self.locals[equation.target] = node  # the same at every step: no line here
                continue
            if equation.is_state and not data.batched:
                # h[t] = tanh(b): the same for every example, but a state has a batch axis
                node = self.graph.add(OP.add, [self.zeros(), node], **self.where)
                data = self.graph[node]
            elif (data.step != self.where["step"] or data.block != self.where["block"]
                    or data.comment is not None):
                # h[t] = h[t-1] or h[t] = n: the state gets a node of its own at this step
                node = self.graph.add(OP.identity, [node], **self.where)
                data = self.graph[node]
            self.graph.update(node, place=equation.target, comment=equation.text)
            (self.current if equation.is_state else self.locals)[equation.target] = node
        return {state: self.current[state] for state in self.cell.states}

    def node(self, expr) -> int:
        if isinstance(expr, eq.Number):
            return self.graph.const(expr.value)
        if isinstance(expr, eq.Param):
            return self.params[expr.name]
        if isinstance(expr, eq.Input):
            return self.x_t
        if self.in_product and self.reads_masked(expr):
            return self.masked_node(expr)
        if isinstance(expr, eq.State):
            return (self.previous if expr.previous else self.current)[expr.name]
        if isinstance(expr, eq.Local):
            return self.locals[expr.name]
        if isinstance(expr, eq.Binary):
            return self.op(ops.BINARY[expr.op], [expr.left, expr.right])
        if isinstance(expr, eq.Negate):
            return self.op(OP.neg, [expr.operand])
        if isinstance(expr, eq.Call):
            return self.op(expr.function, list(expr.args))  # named as its op
        raise TypeError(f"unknown expression {expr!r}")

    def op(self, name: str, operands: list) -> int:
        args = [self.operand(operand, name == OP.matvec and k == 1)
                for k, operand in enumerate(operands)]
        self.counter += 1
        if all(self.graph[arg].op in (OP.param, OP.const) or arg in self.hoisted
               for arg in args):
            return self.invariant(name, args)
        return self.graph.add(name, args, place=f"{self.target}.{self.counter}", **self.where)

    def invariant(self, name: str, args: list) -> int:
        """An op of parameters and numbers only (``-0.5``, ``2 * b``) is the same at every
        step: a number, folded here, or one node before the loop that every step reads."""
        graph = self.graph
        if all(graph[arg].op == OP.const for arg in args):
            with np.errstate(all="ignore"):  # log(0), 1 / 0: not folded, computed as written
                value = ops.get(name).evaluate(*(graph[arg].attrs["value"] for arg in args))
            if np.ndim(value) == 0 and np.isfinite(value):
                return graph.const(float(value))
        key = (name, tuple(args))
        if key not in self.invariants:
            self.invariants[key] = graph.add(name, args, layer=self.where["layer"],
                                             place=f"{self.target}.{self.counter}")
        return self.invariants[key]

    @property
    def hoisted(self):
        return self.invariants.values()
