"""One function of the generated module: a graph's program as straight-line NumPy code
and ``for t`` loops.

Every recurrence becomes a loop over one step of the cell, with the spec's equations as
comments above the lines they became. A block with no recurrence (a dense layer on a
sequence) runs on all steps at once. Single-use subexpressions are inlined, so a line reads
like its equation. A backward loop reads what its forward loop saved at every step.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rnncompiler.ir.graph import Graph
from rnncompiler.ir.ops import OP
from rnncompiler.lowering import STEP_READS, LoopPlan, Plan

from . import layouts
from .lowering import ATOM, LEAVES, LOWERINGS, VIEWS
from .names import Names
from .segments import emit_checkpointed
from .sequences import SequenceArrays


@dataclass
class Context:
    """What a lowering needs to know about where it is."""

    step_variable: str | None = None  # "t" inside a loop
    whole_sequences: bool = False
    arg_shapes: tuple = ()
    arg_batched: tuple = ()
    steps_variable: str | None = None  # "steps": T, read off the inputs, where lengths follow it
    feature_major: bool = False  # arrays of examples are held transposed (layouts.py)
    shape: tuple = ()  # the result's shape (of one example), and whether it has a batch axis
    batched: bool = False


class FunctionWriter(SequenceArrays):
    def __init__(self, graph: Graph, program: Plan, indent: int = 1,
                 function: str | None = None, feature_major: bool = False):
        self.graph = graph
        self.feature_major = feature_major
        self.program = program
        # with the function's name, the large arrays it fills and does not return (its
        # loops' buffers, products over whole sequences) are kept between calls
        # (``workspace``), keyed by it
        self.function = function
        self.uses_workspace = False
        self.returned = self.storage_of(graph.outputs.values())
        self.step_reads: dict = {}  # (kind, ref) of a step read -> its name in a loop body
        self.names = Names()
        self.var: dict[int, str] = {}  # node -> variable holding its value
        self.flat: dict[int, str] = {}  # node -> its sequence as [features, steps * batch]
        self.steps_inner: dict[str, int] = {}  # buffers filled as [features, steps, batch]
        self.saved: dict[tuple, str] = {}  # (block, place, "after" | "in") -> buffer
        self.lines: list[str] = []
        self.indent = indent
        self.loops = program.loops
        self.loop_of = {node: (loop, place) for loop in self.loops
                        for place, node in loop.template.items()}
        # T read off a sequence input, so the code is the same for every T (the module's
        # INPUTS still state the T it was compiled for)
        self.steps_reference = next((node for name, node in graph.inputs.items()
                                     if name in graph.follows_steps), None)
        self.steps_name = "steps" if self.steps_reference is not None else None
        self.context = self.new_context()
        self.carried_starts: dict[int, int] = {}  # node -> how many loop states start from it
        self.swapped = layouts.swapped_weights(graph) if feature_major else {}
        self.invariants = set()  # nodes some loop reads at every step
        # checkpointed loops (segments.py): values k steps long are read at t - start
        self.local_steps: dict[str, str] = {}  # variable -> the index of step t in it
        self.local_nodes: set = set()
        self.segments: dict = {}
        if any(loop.checkpoint for loop in self.loops):
            self.segment, self.start, self.stop = map(self.names.take,
                                                      ("segment", "start", "stop"))
        for loop in self.loops:
            for start in loop.carried.values():
                self.carried_starts[start] = self.carried_starts.get(start, 0) + 1
            self.invariants |= {arg.ref for args in loop.args.values() for arg in args
                                if arg.kind in ("invariant", "slice")}

    def new_context(self, step_variable: str | None = None, whole: bool = False) -> Context:
        return Context(step_variable, whole_sequences=whole, steps_variable=self.steps_name,
                       feature_major=self.feature_major)

    def users_of(self, node: int) -> list[int]:
        """The nodes that read ``node`` in the code (a swapped product reads the other)."""
        users = [user for user in self.graph.users(node) if user not in self.swapped
                 or self.graph.args(user)[0] != node]
        return users + [user for user, weight in self.swapped.items() if weight == node]

    def storage_of(self, nodes) -> set[int]:
        """``nodes`` and every node whose array one of their values may be, or view."""
        seen, pending = set(), list(nodes)
        while pending:
            node = pending.pop()
            if node not in seen:
                seen.add(node)
                if self.graph[node].op in VIEWS:
                    pending.extend(self.graph.args(node))
        return seen

    def emit(self, text: str = "") -> None:
        self.lines.append(("    " * self.indent + text) if text else "")

    def body(self, check_inputs: bool = True) -> list[str]:
        """The statements of the function: read inputs and params, compute, return."""
        graph = self.graph
        for name, node in graph.inputs.items():
            self.var[node] = self.names.take(name)
            text = f'check_input(inputs, "{name}")'
            if self.feature_major:
                text = layouts.input_text(self.graph, text, node,
                                          f"{self.function}.{self.var[node]}")
                self.uses_workspace |= text.startswith("steps_first")
            self.emit(f"{self.var[node]} = {text}")
        batch_axis = -1 if self.feature_major else 0
        self.emit(f"batch = {self.var[next(iter(graph.inputs.values()))]}.shape[{batch_axis}]")
        if self.steps_name and self.uses_steps():
            axis = 0 if self.feature_major else 1
            self.emit(f"{self.steps_name} = {self.var[self.steps_reference]}.shape[{axis}]")
        for name, node in graph.params.items():
            self.var[node] = self.names.take(name)
            self.emit(f'{self.var[node]} = params["{name}"]')
        for item in self.program.items:
            if isinstance(item, LoopPlan) and item.checkpoint:
                emit_checkpointed(self, item)
            elif isinstance(item, LoopPlan):
                self.emit_loop(item)
            elif (graph[item].op not in LEAVES and item not in self.var
                  and self.materialized(item)):
                self.emit_assignment(item, self.outside_name(item))
        return self.lines

    def uses_steps(self) -> bool:
        return any(loop.block.follows_steps for loop in self.loops) or any(
            data.attrs.get("dynamic") for _, data in self.graph.items())

    def steps_of(self, block) -> str:
        """A loop's length in the code: ``steps`` where it is T, else the number."""
        return self.steps_name if block.follows_steps and self.steps_name else str(block.steps)

    # --- values outside loops ---------------------------------------------------------
    def materialized(self, node: int) -> bool:
        """Whether an outside node gets a variable, rather than being inlined where used."""
        graph = self.graph
        users = self.users_of(node)
        if graph[node].op == OP.const or (graph.users(node) and not users):  # (read swapped)
            return False
        if self.feature_major and graph[node].op == OP.shift_steps and all(
                graph[user].op == OP.outer_sum for user in users):
            return False  # the products read it shifted into their copy (steps_flat)
        in_loops = [u for u in users if graph[u].step is not None]
        is_output = node in graph.outputs.values()
        if self.carried_starts.get(node, 0) == 1 and len(users) == len(in_loops) \
                and node not in self.invariants:
            return is_output  # a loop's state starts from it: written where the loop starts
        return len(users) != 1 or is_output or bool(in_loops) or graph[node].comment is not None

    def output_name(self, node: int) -> str | None:
        return next((name for name, out in self.graph.outputs.items() if out == node), None)

    def outside_name(self, node: int) -> str:
        data = self.graph[node]
        if data.comment is not None:  # a layer's value
            return self.output_name(node) or data.layer
        return self.output_name(node) or data.place or data.layer or data.op

    def emit_assignment(self, node: int, name: str) -> None:
        in_place = self.sum_into_product(node)
        product = in_place[0] if in_place else node
        if self.graph[node].comment is not None:
            self.emit(f"# layer {self.graph[node].layer}: {self.graph[node].comment}")
        if self.kept_product(product, node):
            self.var[node] = var = self.names.take(name)
            self.emit_kept_product(product, var)
        else:
            text = self.expr(product)[0]
            self.var[node] = var = self.names.take(name)
            self.emit(f"{var} = {text}")
        if in_place:  # the product's own buffer takes the sum: no second array of its size
            term, text = in_place[1], self.expr(in_place[1])[0]
            axes = len(self.graph[term].shape)
            if self.feature_major and not self.graph[term].batched and axes:  # a bias
                text = layouts.with_batch_axis(text, axes)
            self.emit(f"{var} += {text}")

    def expr(self, node: int):
        if node in self.var:
            return self.var[node], ATOM
        args = self.graph.args(node)
        return self.lower(node, [self.expr(arg) for arg in args], args)

    def lower(self, node: int, texts: list, args: list):
        data = self.graph[node]
        if node in self.swapped:  # Wᵀ v as a product with the other: W_T.T @ v is W @ v
            weight = self.swapped[node]
            data, args = replace(data, op=OP.matvec), [weight, args[1]]
            texts = [self.expr(weight), texts[1]]
        self.set_args(args)
        self.context.shape, self.context.batched = data.shape, data.batched
        if data.op == OP.take_step and self.context.step_variable \
                and texts[0][0] in self.local_steps:  # a value k steps long (segments.py)
            return f"{texts[0][0]}[:, {self.step_of(texts[0][0])}]", ATOM
        if data.op == OP.sum_batch and args[0] in self.steps_inner.values():
            return f"{self.flat[args[0]]}.sum(axis=-1)", ATOM
        if self.feature_major and data.op == OP.outer_sum and layouts.rank(self.context, 0) == 3:
            texts = [(self.steps_flat(arg, text[0]), ATOM) for arg, text in zip(args, texts)]
        if self.feature_major:
            return layouts.lower_feature_major(data.op, texts, data.attrs, self.context)
        return LOWERINGS[data.op](texts, data.attrs, self.context)

    def set_args(self, args: list) -> None:
        """What the lowering of an op with these arguments knows of them."""
        self.context.arg_shapes = tuple(self.graph[arg].shape for arg in args)
        self.context.arg_batched = tuple(self.graph[arg].batched for arg in args)

    # --- loops --------------------------------------------------------------------------
    def emit_loop(self, loop: LoopPlan) -> None:
        block, whole = loop.block, loop.whole
        self.emit()
        self.emit(f"# {self.describe(loop)}")
        prefix = block.gradient_of or block.name
        place_var = {place: self.names.take(f"{prefix}_{place}")
                     for place in sorted(loop.carried.keys() | loop.finals | loop.saved)}
        buffers = {stack: self.names.take(self.output_name(stack) or block.name)
                   for stack in loop.collected}
        if whole:
            for stack, place in loop.collected.items():
                place_var.setdefault(place, buffers[stack])
        for place, start in loop.carried.items():
            self.emit(f"{place_var[place]} = {self.expr(start)[0]}")
        if not whole:
            self.allocate(loop, buffers, place_var)
            length = self.steps_of(block)
            steps = f"reversed(range({length}))" if block.backward else f"range({length})"
            self.emit(f"for t in {steps}:")
            self.indent += 1
            for place in sorted(loop.saved_in):
                buffer = self.saved[(block.name, place, "in")]
                self.emit(f"{self.at_step(buffer, loop, place)} = {place_var[place]}")
        else:
            for place in loop.saved:
                self.saved[(block.name, place, "after")] = place_var[place]
        self.names.open_scope()
        self.context = self.new_context("t", whole)
        self.emit_body(loop, place_var)
        if not whole:
            stores = [(buffers[stack] if kind == "collected" else
                       self.saved[(block.name, place, kind)], place)
                      for kind, stack, place in loop.per_step if kind != "in"]
            for buffer, place in stores:
                value = self.loop_value(loop, place, place_var)
                self.emit(f"{self.at_step(buffer, loop, place)} = {value}")
            self.indent -= 1
        self.names.close_scope()
        self.context = self.new_context()
        for place in loop.finals:
            self.var[loop.iterations[-1][place]] = place_var[place]
        for stack, buffer in buffers.items():
            self.var[stack] = buffer if not whole else place_var[loop.collected[stack]]
            if buffer in self.steps_inner and not whole:
                self.flat[stack] = f"{buffer}.reshape({self.graph[stack].shape[-1]}, -1)"

    def describe(self, loop: LoopPlan) -> str:
        block = loop.block
        if block.gradient_of:
            what = f"cell {block.cell}" if block.cell else "every step"
            return (f"gradients of layer {block.gradient_of} ({what}), back through "
                    f"{self.steps_described(block)}")
        if block.cell is None:
            return f"layer {block.layer}: at every step" + ("" if loop.whole else ", one at a time")
        direction = "backward" if block.backward else "forward"
        steps = self.steps_described(block)
        return f"layer {block.name}: {block.cell} cell, {direction} over {steps}"

    def steps_described(self, block) -> str:
        return "every step" if self.steps_of(block) == self.steps_name else f"{block.steps} steps"

    def emit_body(self, loop: LoopPlan, place_var: dict) -> None:
        for place in sorted(loop.keep_previous):
            previous = self.names.take(f"{place}_prev")
            self.emit(f"{previous} = {place_var[place]}")
            place_var[("previous", place)] = previous
        self.body_var: dict = {}
        self.bind_step_reads(loop)
        for place in loop.body:
            data = self.graph[loop.template[place]]
            text = self.template_expr(loop, place, place_var)[0]
            if data.comment is not None:
                self.emit(f"# {data.comment}")
            name = place_var.get(place) or self.names.take(place)
            self.body_var[place] = name
            self.emit(f"{name} = {text}")

    def bind_step_reads(self, loop: LoopPlan) -> None:
        """A step of a saved or outside sequence that the body reads more than once (the
        plan counts the reads) gets a name of its own at the top of the body
        (``h_1_t = saved_RNN_h_1[:, t]``): each ``[:, t]`` is a NumPy call, and at batch 1
        the calls are what a step costs."""
        self.step_reads = {}
        for read, count in loop.step_reads.items():
            if count > 1:
                text, hint = self.step_text(*read)
                self.step_reads[read] = name = self.names.take(f"{hint}_t")
                self.emit(f"{name} = {text}")

    def step_of(self, sequence: str) -> str:
        """The index of step t in ``sequence``: ``t``, or ``t - start`` in an array k steps
        long (a checkpointed loop's segment)."""
        return self.local_steps.get(sequence, "t")

    def step_read(self, kind: str, ref):
        """Step t of what the argument reads, or the name the body gave it."""
        return self.step_reads.get((kind, ref)) or self.step_text(kind, ref)[0], ATOM

    def loop_value(self, loop: LoopPlan, place: str, place_var: dict) -> str:
        return self.body_var.get(place) or place_var.get(place) or \
            self.template_expr(loop, place, place_var)[0]

    def template_expr(self, loop: LoopPlan, place: str, place_var: dict):
        """The expression of ``place`` in the loop body, arguments resolved."""
        node = loop.template[place]
        texts = []
        for arg in loop.args[place]:
            if arg.kind == "invariant":
                texts.append(self.expr(arg.ref))
            elif arg.kind in STEP_READS:
                texts.append(self.step_read(arg.kind, arg.ref))
            elif arg.kind == "carried":
                texts.append((place_var.get(("previous", arg.ref), place_var[arg.ref]), ATOM))
            elif arg.ref in self.body_var:
                texts.append((self.body_var[arg.ref], ATOM))
            else:
                texts.append(self.template_expr(loop, arg.ref, place_var))
        return self.lower(node, texts, self.graph.args(node))
