"""Graph -> ONNX ModelProto, in one of four modes:

- ``unrolled``: one ONNX node (or a few) per graph node, every step written out;
- ``scan``: every loop the plan runs one step at a time as one ``Scan`` whose body is
  one step of the cell; the sequence length is a run-time dimension;
- ``native``: recurrent layers of built-in cells as ONNX ``RNN``/``LSTM``/``GRU``
  operators (``native.py``), everything else as in ``scan``;
- ``auto``: ``native`` for every LSTM and GRU layer the operators can compute, ``scan`` for
  the others (simple cells, custom cells, feedback, float64).

The batch dimension is symbolic. Parameters are initializers.
"""

from __future__ import annotations

import itertools

import onnx
from onnx import TensorProto, helper

from rnncompiler import __version__
from rnncompiler.errors import RnncError
from rnncompiler.ir.graph import Graph
from rnncompiler.ir.ops import OP
from rnncompiler.lowering import LoopPlan, make_plan, saved_value

from .builder import OPSET, OnnxBuilder
from .layouts import LAYOUT_FREE, TimeMajor
from .lowering import LOWERINGS, Context
from .options import MODES


def build_model(graph: Graph, params: dict | None, mode: str = "scan",
                doc: str = "") -> onnx.ModelProto:
    """A checked ONNX model computing ``graph``'s outputs, with ``params`` as initializers;
    with ``params`` None, the parameters are graph inputs instead (fed at every run)."""
    if mode not in MODES:
        raise RnncError(f"unknown ONNX mode '{mode}'; choose {', '.join(MODES)}")
    emitter = _Emitter(graph, params, mode)
    onnx_graph = emitter.build(doc)
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="rnncompiler", producer_version=__version__,
                              doc_string=doc)
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def _rename(nodes, names: dict) -> None:
    """Rename tensors in ``nodes`` and in the loop bodies they hold."""
    for node in nodes:
        node.input[:] = [names.get(name, name) for name in node.input]
        node.output[:] = [names.get(name, name) for name in node.output]
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                _rename(attribute.g.node, names)
                for value in attribute.g.output:
                    value.name = names.get(value.name, value.name)


class _Emitter:
    def __init__(self, graph: Graph, params: dict, mode: str):
        self.graph = graph
        self.params = params
        self.mode = mode
        self.b = OnnxBuilder(graph.dtype)
        self.values: dict[int, str] = {}  # graph node -> tensor name
        self.saved: dict[tuple, str] = {}  # (block, place, "after" | "in") -> [T, batch, n]
        self.saved_batch_first: set[str] = set()  # saved by a whole-sequence map: [batch, T, n]
        self.dynamic = mode != "unrolled" and graph.steps is not None and bool(
            graph.follows_steps)
        self.context = Context(transposed=self.transposed)
        self.time_major = TimeMajor(self)  # what Scans read and write (layouts.py)
        self.transposes: dict[str, str] = {}

    # --- the model ------------------------------------------------------------------------
    def build(self, doc: str) -> onnx.GraphProto:
        graph, b = self.graph, self.b
        inputs = []
        for name, node in graph.inputs.items():
            self.values[node] = name
            integer = graph[node].attrs.get("integer")  # <sequence>.lengths
            inputs.append(b.value_info(name, self.dims(name, node),
                                       TensorProto.INT64 if integer else None))
        if self.dynamic:
            reference = next(n for n in graph.inputs if n in graph.follows_steps)
            self.context.steps_tensor = b.op(
                "Slice", [b.op("Shape", [reference]), b.ints([1]), b.ints([2])], hint="T")
        for name, node in graph.params.items():
            if self.params is None:
                inputs.append(b.value_info(name, graph[node].shape))
                self.values[node] = name
            else:
                self.values[node] = b.initializer(name, self.params[name])
        if self.mode == "unrolled":
            for node in graph.topological_order():
                self.value(node)
        else:
            self.emit_program()
        outputs = []
        for node in graph.outputs.values():
            self.value(node)
        produced = {out for n in b.nodes for out in n.output}
        renamed: dict[str, str] = {}
        for name, node in graph.outputs.items():
            source = self.value(node)
            if source in produced and source not in renamed:
                # the node writes the output under its name: an Identity to an output whose
                # source other nodes also read trips onnxruntime's identity elimination
                renamed[source] = name
            else:
                b.op("Identity", [renamed.get(source, source)], name=name)
            outputs.append(b.value_info(name, self.dims(name, node)))
        _rename(b.nodes, renamed)
        return b.graph(graph.name, inputs, outputs, doc)

    def transposed(self, name: str) -> str | None:
        """Wᵀ of a parameter, computed once at the top of the model (loop bodies read it)."""
        if name not in self.graph.params:
            return None
        if name not in self.transposes:
            self.transposes[name] = self.b.op("Transpose", [name], perm=[1, 0],
                                              hint=f"{name}.T")
        return self.transposes[name]

    def dims(self, name: str, node: int) -> list:
        data = self.graph[node]
        shape = list(data.shape)
        if shape and data.batched and self.dynamic \
                and name in self.graph.follows_steps:  # [T, n], or ids [T]
            shape[0] = "T"
        return (["batch"] if data.batched else []) + shape

    def value(self, node: int) -> str:
        if node not in self.values:
            data = self.graph[node]
            if data.op == OP.const:
                self.values[node] = self.b.constant(data.attrs["value"])
            elif node in self.time_major.values:
                self.values[node] = self.b.op("Transpose", [self.time_major.values[node]],
                                              perm=[1, 0, 2], hint="batch_first")
            elif data.op in LAYOUT_FREE and self.time_major.takes_all(node):
                self.values[node] = self.lower(node, self.b, self.time_major.args(node))
            else:
                self.lower(node)
        return self.values[node]

    def lower(self, node: int, builder: OnnxBuilder | None = None, args=None,
              context: Context | None = None) -> str:
        graph = self.graph
        data = graph[node]
        arg_nodes = graph.args(node)
        names = args if args is not None else [self.value(a) for a in arg_nodes]
        context = context or self.context
        context.arg_shapes = tuple(graph[a].shape for a in arg_nodes)
        context.arg_batched = tuple(graph[a].batched for a in arg_nodes)
        result = LOWERINGS[data.op](builder or self.b, names, data.attrs, context)
        if args is None:
            self.values[node] = result
        return result

    # --- scan and native ------------------------------------------------------------------
    def emit_program(self) -> None:
        """The loops in the plan's order; the values outside them where something reads
        them (a loop, an output), so that a Scan can take a sequence time-major."""
        program = make_plan(self.graph)
        native = None
        if self.mode in ("native", "auto"):
            from .native import NativeLayers
            native = NativeLayers(self, program, strict=self.mode == "native")
        for loop in program.loops:
            if native is not None and native.takes(loop):
                native.emit(loop)
            else:
                self.emit_loop(loop)

    def emit_loop(self, loop: LoopPlan) -> None:
        """One loop of the plan as a ``Scan`` (or, for a map the plan runs over whole
        sequences, the same ops on whole sequences)."""
        graph = self.graph
        if loop.whole:
            return self.emit_whole(loop)
        body = self.b.child(f"{loop.block.name}/")
        body_values: dict[str, str] = {}  # place -> tensor in the body
        state_in = {q: body.fresh(f"{q}_in") for q in loop.carries}
        sequences: dict[str, str] = {}  # outer sequence tensor -> its element in the body
        batch_first: set[str] = set()  # outer sequences the Scan reads along axis 1
        context = Context(steps_tensor=self.context.steps_tensor, transposed=self.transposed)
        context.step_index = body.fresh("t")  # the step, where a body needs it

        def element(outer: str) -> str:
            if outer not in sequences:
                sequences[outer] = body.fresh("step")
            return sequences[outer]

        def element_of(node: int) -> str:
            outer = self.time_major.value(node)
            if outer is None:
                outer = self.value(node)
                batch_first.add(outer)
            return element(outer)

        splits = self.split_groups(loop)
        for place in loop.order:
            if place in body_values:  # a slice that a Split made with its neighbours
                continue
            node = loop.template[place]
            data = graph[node]
            args = []
            if data.op == OP.take_step and loop.args[place][0].kind == "invariant":
                body_values[place] = element_of(loop.args[place][0].ref)  # the Scan's element
                continue
            for arg in loop.args[place]:
                if arg.kind == "local":
                    args.append(body_values[arg.ref])
                elif arg.kind == "carried":
                    args.append(state_in[arg.ref])
                elif arg.kind == "invariant":
                    args.append(self.value(arg.ref))
                elif arg.kind == "slice":
                    args.append(element_of(arg.ref))
                else:
                    outer = self.saved[saved_value(arg.kind, arg.ref)]
                    if outer in self.saved_batch_first:
                        batch_first.add(outer)
                    args.append(element(outer))
            if place in splits:
                body_values.update(self.split(body, args[0], splits[place]))
            else:
                body_values[place] = self.lower(node, body, args, context)
        index_outer = None
        if not sequences or any(graph[n].op == OP.cut_chunk for n in loop.template.values()):
            # a Scan needs one sequence to run over: the steps themselves, when nothing else
            length = self.context.steps(self.b, loop.block.steps, loop.block.follows_steps)
            index_outer = self.b.op("Range", [self.b.ints(0), self.b.op("Squeeze", [length]),
                                              self.b.ints(1)], hint="steps")
        self.finish_scan(loop, body, body_values, state_in, sequences, batch_first,
                         index_outer, context)

    def split_groups(self, loop: LoopPlan) -> dict:
        """Slices of one value in a loop body, by place: [(start, stop, place)] of every
        slice of the same value, where there are several (one Split makes them all; a
        Scan body runs every step, and at a small batch each node costs more than its
        work)."""
        by_source: dict = {}
        for place, node in loop.template.items():
            data = self.graph[node]
            if data.op == OP.slice_features:
                arg = loop.args[place][0]
                by_source.setdefault((arg.kind, arg.ref), []).append(
                    (data.attrs["start"], data.attrs["stop"], place))
        groups = {}
        for slices in by_source.values():
            slices.sort()
            disjoint = all(a[1] <= b[0] for a, b in itertools.pairwise(slices))
            if len(slices) > 1 and disjoint:
                source = self.graph.args(loop.template[slices[0][2]])[0]
                width = self.graph[source].shape[-1]
                groups.update({place: (slices, width) for _, _, place in slices})
        return groups

    def split(self, body: OnnxBuilder, source: str, group) -> dict:
        """One Split of ``source``'s last axis into the group's slices (and the gaps)."""
        slices, total = group
        sizes, places, at = [], [], 0
        for start, stop, place in slices:
            if start > at:
                sizes.append(start - at)
                places.append(None)
            sizes.append(stop - start)
            places.append(place)
            at = stop
        if at < total:
            sizes.append(total - at)
            places.append(None)
        names = body.op("Split", [source, body.ints(sizes)], outputs=len(sizes), axis=-1,
                        hint="gates")
        return {place: name for place, name in zip(places, names) if place is not None}

    def finish_scan(self, loop, body, body_values, state_in, sequences, batch_first,
                    index_outer, context) -> None:
        b = self.b
        carried = loop.carries
        # a final value that is not carried comes out as the last step of a sequence
        per_step = loop.per_step + [("final", None, place)
                                    for place in sorted(loop.finals - set(carried))]
        body_outputs = []
        produced = {out for node in body.nodes for out in node.output}

        def output(source: str, hint: str) -> str:
            """A body output: the value itself where a body node makes it and no other
            output is it already, else an Identity of it."""
            if source in produced:
                produced.discard(source)
                return source
            return body.op("Identity", [source], hint=hint)

        for place in carried:
            out = output(body_values[place], f"{place}_out")
            body_outputs.append(self.body_info(body, out, loop.template[place]))
        for kind, _, place in per_step:
            source = state_in[place] if kind == "in" else body_values[place]
            out = output(source, f"{place}_{kind}")
            body_outputs.append(self.body_info(body, out, loop.template[place]))
        body_inputs = [self.body_info(body, state_in[q], loop.template[q]) for q in carried]
        scan_inputs = list(sequences)
        body_inputs += [body.value_info(sequences[s], ["batch", None]) for s in scan_inputs]
        axes = [1 if outer in batch_first else 0 for outer in scan_inputs]
        if index_outer is not None:
            scan_inputs.append(index_outer)
            body_inputs.append(body.value_info(context.step_index, [], TensorProto.INT64))
            axes.append(0)
        direction = 1 if loop.block.backward else 0
        attrs = {"num_scan_inputs": len(scan_inputs)}
        if scan_inputs:  # ONNX attributes may not be empty lists
            attrs.update(scan_input_directions=[direction] * len(scan_inputs),
                         scan_input_axes=axes)
        if per_step:
            attrs.update(scan_output_directions=[direction] * len(per_step),
                         scan_output_axes=[0] * len(per_step))
        outputs = b.op(
            "Scan", [self.value(loop.carried[q]) for q in carried] + scan_inputs,
            outputs=len(carried) + len(per_step), hint=loop.block.name,
            body=body.graph(f"{loop.block.name}_step", body_inputs, body_outputs), **attrs)
        outputs = [outputs] if isinstance(outputs, str) else outputs
        for place, name in zip(carried, outputs):
            self.values[loop.iterations[-1][place]] = name
        for (kind, stack, place), name in zip(per_step, outputs[len(carried):]):
            if kind == "collected":
                self.time_major.values[stack] = name
            elif kind == "final":
                last = b.ints(-1 if not loop.block.backward else 0)
                self.values[loop.iterations[-1][place]] = b.op("Gather", [name, last], axis=0)
            else:
                self.saved[(loop.block.name, place, kind)] = name

    def body_info(self, body: OnnxBuilder, name: str, node: int):
        data = self.graph[node]
        dims = (["batch"] if data.batched else []) + list(data.shape)
        return body.value_info(name, dims)

    def emit_whole(self, loop: LoopPlan) -> None:
        """A map over the steps: the body's ops on whole [batch, T, n] sequences."""
        values: dict[str, str] = {}
        for place in loop.order:
            node = loop.template[place]
            args = [values[a.ref] if a.kind == "local" else self.value(a.ref)
                    for a in loop.args[place]]
            if self.graph[node].op == OP.take_step:
                values[place] = args[0]
            else:
                values[place] = self.lower(node, self.b, args)
        for stack, place in loop.collected.items():
            self.values[stack] = values[place]
        for place in loop.saved:  # read step by step by a later loop's Scan, along axis 1
            self.saved[(loop.block.name, place, "after")] = values[place]
            self.saved_batch_first.add(values[place])
