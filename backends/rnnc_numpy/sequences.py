"""The arrays a generated function fills a step at a time or over whole sequences, and
how it reads a step of them: the loops' buffers (kept between calls in ``workspace``),
the products over whole sequences, and their feature-major forms (``layouts.py``).

A part of ``FunctionWriter`` (``function.py``), which holds the graph and the code.
"""

from __future__ import annotations

from rnncompiler.ir.ops import OP
from rnncompiler.lowering import LoopPlan, saved_value

from . import layouts
from .lowering import product_into


class SequenceArrays:
    def emit_kept_product(self, product: int, var: str) -> None:
        args = self.graph.args(product)
        vector, width = self.var[args[1]], self.graph[product].shape[-1]
        self.uses_workspace = True
        dims = layouts.kept_shape(vector, width) if self.feature_major else \
            f"(*{vector}.shape[:2], {width})"
        self.emit(f'{var} = workspace(kept, "{self.function}.{var}", {dims})')
        texts = [self.expr(arg) for arg in args]  # (lowering them sets the context)
        self.set_args(args)
        into = layouts.product_into if self.feature_major else product_into
        self.emit(into(self.graph[product].op, texts, self.context, var))

    def kept_product(self, product: int, node: int) -> bool:
        """Whether a product over whole sequences (a hoisted input product), which only
        this function reads, is computed into an array kept between calls: taken afresh
        it costs page faults at every call (as the loops' arrays would)."""
        graph, data = self.graph, self.graph[product]
        if not self.function or data.op not in (OP.matvec, OP.matvec_t) \
                or data.step is not None or {product, node} & self.returned:
            return False
        vector = graph.args(product)[1]
        return vector in self.var and graph[vector].batched \
            and len(graph[vector].shape) == 2

    def sum_into_product(self, node: int):
        """(product, term) where ``node`` is a sum of a product that only it reads and
        that has the sum's shape (the hoisted input product and its biases), else None."""
        graph, data = self.graph, self.graph[node]
        if data.op != OP.add or data.step is not None:
            return None
        for product, term in (graph.args(node), graph.args(node)[::-1]):
            arg = graph[product]
            if arg.op in (OP.matvec, OP.matvec_t) and product not in self.var \
                    and len(graph.users(product)) == 1 and arg.step is None \
                    and arg.shape == data.shape and arg.batched == data.batched \
                    and product != term:
                return product, term
        return None

    def steps_flat(self, node: int, text: str) -> str:
        """A feature-major sequence as [features, steps * batch], for a product that sums
        over steps and examples: copied once into a kept array (the weight gradients of
        every gate read the same states); a sequence shifted by a step (the states each
        step started from) is shifted into that copy."""
        graph = self.graph
        if node not in self.flat:
            name = self.var.get(node) or self.outside_name(node) + (
                "_shifted" if graph[node].op == OP.shift_steps else "")
            name, features = self.names.take(f"{name}_flat"), graph[node].shape[-1]
            if graph[node].op == OP.shift_steps and node not in self.var:
                sequence, first = (self.expr(arg)[0] for arg in graph.args(node))
                copy = layouts.shifted_into(sequence, first, graph[node].attrs["backward"],
                                            name)
            else:
                sequence, copy = text, f"np.copyto({name}, {text}.transpose(1, 0, 2))"
            self.uses_workspace = True
            self.emit(f'{name} = workspace(kept, "{self.function}.{name}", '
                      f"({features}, {sequence}.shape[0], batch))")
            self.emit(copy)
            self.flat[node] = f"{name}.reshape({features}, -1)"
        return self.flat[node]

    def allocate(self, loop: LoopPlan, buffers: dict, place_var: dict) -> None:
        """Arrays that a loop fills one step at a time: collected sequences, saved values."""
        block = loop.block
        wanted = []
        for kind, stack, place in loop.per_step:
            if kind == "collected":
                if self.summed_only(stack):
                    self.steps_inner[buffers[stack]] = stack
                wanted.append((buffers[stack], place, stack in self.returned))
                continue
            name = self.names.take(f"saved_{block.name}_{place}" + ("_in" if kind == "in"
                                                                    else ""))
            self.saved[(block.name, place, kind)] = name
            values = {iteration[place] for iteration in loop.iterations}
            if place in loop.carried:
                values.add(loop.carried[place])
            wanted.append((name, place, bool(values & self.returned)))
        for buffer, place, returned in wanted:
            shape = (self.steps_of(block), *self.graph[loop.template[place]].shape)
            shape = (*shape, "batch") if self.feature_major else ("batch", *shape)
            if buffer in self.steps_inner:  # [features, steps, batch]
                shape = (shape[1], shape[0], shape[2])
            self.emit_buffer(buffer, shape, returned)

    def emit_buffer(self, name: str, shape: tuple, returned: bool) -> None:
        """``name = `` an array of ``shape`` (sizes or names of sizes): kept between calls
        in the workspace, unless the function returns it."""
        dims = f"({', '.join(map(str, shape))})"
        if self.function and not returned:
            self.uses_workspace = True
            self.emit(f'{name} = workspace(kept, "{self.function}.{name}", {dims})')
        else:
            self.emit(f"{name} = np.empty({dims}, dtype=DTYPE)")

    def summed_only(self, stack: int) -> bool:
        """Whether a sequence a loop collects is read only by sums over its steps and
        examples (weight and bias gradients): feature-major, it is filled as [features,
        steps, batch], which those products read as [features, steps * batch] without
        copying it (filling it a step at a time costs less than the copy)."""
        graph, users = self.graph, self.graph.users(stack)
        read_by_loops = any(arg.ref == stack for loop in self.loops
                            for args in loop.args.values() for arg in args)
        return self.feature_major and len(graph[stack].shape) == 2 and bool(users) \
            and stack not in self.returned and not read_by_loops and all(
                graph[user].op == OP.outer_sum or (
                    graph[user].op == OP.sum_batch and len(graph[user].shape) == 1)
                for user in users)

    def step_text(self, kind: str, ref) -> tuple[str, str]:
        """(the expression of step t of what an argument of ``kind`` reads, a name hint)."""
        if kind == "slice":
            sequence = self.expr(ref)[0]
            return layouts.step_of(sequence, self.feature_major, self.step_of(sequence)), \
                sequence
        saved = self.saved[saved_value(kind, ref)]
        loop = next(loop for loop in self.loops if loop.block.name == ref[0])
        return (self.at_step(saved, loop, ref[1]),
                ref[1] + ("_in" if kind == "stepwise_in" else ""))

    def at_step(self, sequence: str, loop: LoopPlan, place: str) -> str:
        """Step t of the array a loop fills with ``place`` (or that another loop reads)."""
        if sequence in self.steps_inner:
            return f"{sequence}[:, t]"
        return layouts.step_of(sequence, self.feature_major, self.step_of(sequence))
