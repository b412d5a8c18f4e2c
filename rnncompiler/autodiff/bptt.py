"""BPTT: the loss graph -> gradient nodes for every parameter, by reverse-mode
differentiation of the unrolled graph with each op's VJP rule.

A parameter is one node used at every step; its gradient is the sum of the contributions
of all those uses — BPTT's weight gradient — kept as a running sum that the backward loop
carries. The backward pass of a recurrence is itself periodic, so it re-rolls into a loop:

- every step's cotangent of a recurrent state is ``carry + in-step contributions``, where
  ``carry`` is the sum of what the next step sent back (zeros before the first backward
  step), so every step has the same shape of graph;
- what reaches a step's node from outside its block (the loss on a sequence, a dense layer
  on the last state) arrives as a whole-sequence cotangent, read back one step at a time.

Truncation (docs/spec.md, Unrolling and BPTT):
- ``full``: one lane; exact.
- ``{chunk: k}``: the carry is zeroed where it would cross between steps j*k-1 and j*k.
- ``{window: k}``: cotangents run in k lanes by age: an error enters at lane 0 at its own
  step and moves one lane up each step it travels back; lane k is dropped. Each lane costs
  one backward pass of the cell, so window costs O(T*k) against full's O(T).
"""

from __future__ import annotations

from collections import defaultdict

import networkx as nx

from ..build.losses import add_loss
from ..build.unroll import unroll
from ..frontend.spec import Spec, UnrollSpec
from ..ir import ops
from ..ir.graph import Block, Graph
from ..ir.loops import analyse_loops


class GradientError(Exception):
    """Internal: a node needs a gradient through an op without a VJP rule."""


def training_graph(spec: Spec, steps: int | None = None) -> Graph:
    """The forward graph of ``spec`` with its loss and the gradient of every parameter;
    outputs ``loss`` and ``grad.<param>``."""
    graph = unroll(spec, steps)
    loss = add_loss(graph, spec)
    differentiate(graph, loss, spec.unroll)
    return graph


def differentiate(graph: Graph, loss: int, truncation: UnrollSpec) -> None:
    """Add the gradient of ``loss`` for every parameter; outputs become loss and grads."""
    backward = _Backward(graph, loss, truncation)
    grads = backward.run()
    graph.outputs = {"loss": loss}
    for name, node in graph.params.items():
        graph.outputs[f"grad.{name}"] = grads.get(node) or graph.zeros_like_param(node)


class _Builder:
    """What a VJP rule builds with: nodes annotated with the step they belong to."""

    def __init__(self, graph: Graph, where: dict, prefix: str, needs: list):
        self.graph = graph
        self.where = where
        self.prefix = prefix
        self.needs = needs
        self.count = 0

    def add(self, op: str, args, **attrs) -> int:
        self.count += 1
        return self.graph.add(op, args, place=f"{self.prefix}/{self.count}", **self.where,
                              **attrs)

    def const(self, value: float) -> int:
        return self.graph.const(value)

    def shape(self, node: int) -> tuple:
        return self.graph[node]["shape"]

    def unbroadcast(self, grad: int, like: int) -> int:
        """``grad`` summed down to the shape of ``like`` (a parameter has no batch axis)."""
        if self.graph[grad]["batched"] and not self.graph[like]["batched"]:
            return self.add("sum_batch", [grad], shape=self.shape(like))
        return grad


class _Backward:
    def __init__(self, graph: Graph, loss: int, truncation: UnrollSpec):
        self.graph = graph
        self.loss = loss
        self.loops = analyse_loops(graph)
        self.at = {node: (loop, place, i) for loop in self.loops.values()
                   for i, iteration in enumerate(loop.iterations)
                   for place, node in iteration.items()}
        self.requires = set(graph.params.values())  # nodes that depend on a parameter
        for node in graph.topological_order():
            if any(arg in self.requires for arg in graph.args(node)):
                self.requires.add(node)
        relevant = self.requires & (nx.ancestors(graph.nx, loss) | {loss})
        self.place_requires = {self.place_key(n) for n in self.requires if n in self.at}
        places = {self.place_key(n) for n in relevant if n in self.at}
        # a place that needs gradients at one step gets them at every step, so that every
        # step of the backward loop is alike (at the first steps, some are zero)
        self.relevant = relevant | {n for n in self.at if self.place_key(n) in places}
        self.mode, self.k = truncation.bptt, truncation.k
        longest = sum(loop.block.steps for loop in self.loops.values() if loop.carried)
        if self.mode == "window" and self.k >= longest:
            self.mode = "full"  # no error can travel k steps: nothing to truncate
        self.lanes = self.k if self.mode == "window" else 1
        self.init_targets = defaultdict(list)  # init node -> [(loop, carried place)]
        for loop in self.loops.values():
            for place, start in loop.carried.items():
                self.init_targets[start].append((loop, place))
        self.contribs = defaultdict(list)  # (node, lane) -> cotangent contributions
        self.lanes_seen = defaultdict(set)  # node -> lanes with contributions
        self.full = defaultdict(list)  # (block, place, lane) -> whole-sequence cotangents
        self.steps = defaultdict(lambda: defaultdict(list))  # (sequence, lane) -> {t: nodes}
        self.carries = defaultdict(list)  # (block, iteration, place, lane) -> contributions
        self.carry_sums: dict = {}
        self.accumulators: dict = {}  # (param, grad block) -> running sum
        self.accumulator_names: dict = {}  # (target, grad block, lane) -> its place
        self.acc_counts = defaultdict(int)  # (param, grad block, iteration) -> terms so far
        self.outside_terms = defaultdict(list)  # param -> contributions from outside loops
        self.names: set = set()  # nodes renamed after what they are a gradient of
        self.zero_nodes: dict = {}  # (shape, batched) -> its zeros

    def named(self, node: int) -> bool:
        return node in self.names or self.graph[node]["op"] in ("zeros", "zeros_shaped")

    def place_key(self, node: int) -> tuple:
        loop, place, _ = self.at[node]
        return loop.block.name, place

    # --- the sweep ------------------------------------------------------------------------
    def run(self) -> dict:
        graph = self.graph
        self.add_contribution(self.loss, 0, graph.const(1.0))
        for node in reversed(graph.topological_order()):
            if node not in self.relevant or graph[node]["op"] in ("param", "input", "const"):
                continue
            sequence = node not in self.at and len(graph[node]["shape"]) == 2 \
                and graph[node]["batched"]
            for lane in self.lanes_of(node):
                if sequence:
                    parts = self.contribs.pop((node, lane), [])
                    whole = self.sum_nodes(parts, self.where(node), "dseq") if parts else None
                    self.propagate_sequence(node, lane, whole)
                else:
                    self.propagate(node, lane, self.total(node, lane))
        for key in list(self.carries):
            self.carry_sum(*key)  # the carries into unneeded starts keep every step alike
        return {param: self.param_total(param) for param in graph.params.values()}

    def lanes_of(self, node: int) -> list:
        if node in self.at and self.at[node][0].carried:
            return list(range(self.lanes))  # every lane at every step, zeros where empty
        return sorted(self.lanes_seen[node])

    def suffix(self, lane: int) -> str:
        return f"@{lane}" if self.lanes > 1 else ""

    def where(self, node: int) -> dict:
        if node not in self.at:
            return {"layer": self.graph[node]["layer"]}
        loop, _, i = self.at[node]
        return self.where_in(loop, i)

    def where_in(self, loop, i: int) -> dict:
        block = loop.block
        name = f"{block.name}.grad"
        if name not in self.graph.blocks:
            self.graph.blocks[name] = Block(name, block.layer, block.steps, not block.backward,
                                            block.cell, gradient_of=block.name,
                                            follows_steps=block.follows_steps)
        return {"step": block.order[i], "layer": block.layer, "block": name}

    def zeros_like(self, node: int) -> int:
        """Zeros of ``node``'s shape: one node per shape, outside every loop, so that a
        zero cotangent is the same value at every step (a loop invariant)."""
        data = self.graph[node]
        key = (data["shape"], data["batched"])
        if key not in self.zero_nodes:
            if data["batched"]:
                ref = next(iter(self.graph.inputs.values()))
                zeros = self.graph.add("zeros", [ref], size=data["shape"][-1])
            else:
                zeros = self.graph.add("zeros_shaped", shape=data["shape"],
                                       dtype=self.graph.dtype)
            self.zero_nodes[key] = zeros
        return self.zero_nodes[key]

    def sum_nodes(self, parts: list, where: dict, place: str) -> int:
        """parts[0] + parts[1] + ...; a single part made at the same step takes the name."""
        total = parts[0]
        data = self.graph[total]
        if len(parts) == 1 and data["step"] == where.get("step") \
                and data["block"] == where.get("block") and not self.named(total):
            data["place"] = place
            self.names.add(total)
        for i, part in enumerate(parts[1:], start=1):
            name = place if i == len(parts) - 1 else f"{place}+{i}"
            total = self.graph.add("add", [total, part], place=name, **where)
        return total

    # --- cotangents ---------------------------------------------------------------------
    def add_contribution(self, node: int, lane: int, value: int) -> None:
        self.contribs[(node, lane)].append(value)
        self.lanes_seen[node].add(lane)

    def has_carry(self, lane: int) -> bool:
        return self.mode != "window" or lane > 0

    def next_lane(self, lane: int) -> int | None:
        """The lane of a cotangent once it has travelled one step further back."""
        if self.mode != "window":
            return lane
        return lane + 1 if lane + 1 < self.lanes else None

    def total(self, node: int, lane: int) -> int:
        """The whole cotangent of ``node`` in ``lane``: carry, sequence parts, the rest."""
        parts, where = [], self.where(node)
        for loop, place in self.init_targets.get(node, []):  # a loop's state starts from it
            key = (loop.block.name, 0, place, lane)
            if key in self.carries or key in self.carry_sums:
                carry = self.carry_sum(*key)
                if node in self.at:  # another loop's last value: like any final use
                    self.route_final(node, carry, lane)
                else:
                    parts.append(carry)
        # what loops summed over their steps for a value they read at every step (a loop
        # of one step reads its start as such a value): from outside, like a final use
        for running in [running for (target, _, at_lane), running in self.accumulators.items()
                        if target == node and at_lane == lane]:
            if node in self.at:
                self.route_final(node, running, lane)
            else:
                parts.append(running)
        if node in self.at:
            loop, place, i = self.at[node]
            if place in loop.carried and self.has_carry(lane):
                if i == len(loop.iterations) - 1:  # nothing comes back from after the end
                    parts.append(self.zeros_like(node))
                else:
                    parts.append(self.carry_sum(loop.block.name, i + 1, place, lane))
            for whole in self.full_sum(loop.block.name, place, lane):
                parts.append(self.graph.add("take_step", [whole], index=where["step"],
                                            place=f"d{place}{self.suffix(lane)}.seq", **where))
        parts += self.contribs.pop((node, lane), [])
        if not parts:
            parts = [self.zeros_like(node)]
        name = self.graph[node]["place"] or self.graph[node]["op"]
        total = self.sum_nodes(parts, where, f"d{name}{self.suffix(lane)}")
        if lane == 0:
            self.graph[node]["cotangent"] = total  # ∂L/∂node, for inspection (grad flow)
        return total

    def full_sum(self, block: str, place: str, lane: int) -> list:
        """The whole-sequence cotangents of a block's place, summed outside the loop."""
        parts = self.full.get((block, place, lane), [])
        if len(parts) > 1:
            self.full[(block, place, lane)] = parts = [self.sum_nodes(parts, {}, f"d{place}")]
        return parts

    def carry_sum(self, block: str, i: int, place: str, lane: int) -> int:
        """What iteration ``i`` sends back to the previous step's ``place``."""
        key = (block, i, place, lane)
        if key not in self.carry_sums and key not in self.carries:
            # the place's reader in the next step needs no gradient (a fed-back output read
            # by states the loss does not see): nothing comes back, at any step alike
            return self.zeros_like(self.loops[block].iterations[i][place])
        if key not in self.carry_sums:
            loop = self.loops[block]
            where = self.where_in(loop, i)
            name = f"carry_{place}{self.suffix(lane)}"
            total = self.sum_nodes(self.carries.pop(key), where, name)
            if self.mode == "chunk":
                total = self.graph.add("cut_chunk", [total], place=f"{name}.cut", **where,
                                       index=where["step"], chunk=self.k,
                                       shift=1 if loop.block.backward else 0,
                                       steps=loop.block.steps,
                                       dynamic=loop.block.follows_steps)
            self.carry_sums[key] = total
        return self.carry_sums[key]

    # --- one node's VJP -----------------------------------------------------------------
    def needs(self, node: int, position: int, arg: int, lane: int) -> bool:
        if node not in self.at:
            return arg in self.requires
        loop, place, _ = self.at[node]
        kind = loop.args[place][position]
        if kind.kind == "invariant":
            return arg in self.requires
        if kind.kind == "carried" and self.next_lane(lane) is None:
            return False
        return (loop.block.name, kind.ref) in self.place_requires

    def propagate(self, node: int, lane: int, grad: int) -> None:
        graph = self.graph
        op, args = graph[node]["op"], graph.args(node)
        if op == "take_step" and args[0] in self.requires:
            self.steps[(args[0], lane)][graph[node]["attrs"]["index"]].append(grad)
            self.lanes_seen[args[0]].add(lane)
            return None
        rule = ops.get(op).vjp
        if rule is None:
            raise GradientError(f"op {op} has no VJP rule")
        needs = [self.needs(node, k, arg, lane) for k, arg in enumerate(args)]
        name = graph[node]["place"] or graph[node]["layer"] or op
        builder = _Builder(graph, self.where(node), f"d{name}{self.suffix(lane)}", needs)
        grads = rule(builder, grad, node, args, graph[node]["attrs"])
        for position, (arg, value) in enumerate(zip(args, grads)):
            if value is not None and needs[position]:
                self.route(node, position, arg, value, lane)
        return None

    def route(self, node: int, position: int, arg: int, value: int, lane: int) -> None:
        """Send a contribution to ``arg``'s cotangent, wherever that lives."""
        graph = self.graph
        if node in self.at:
            loop, place, i = self.at[node]
            kind = loop.args[place][position]
            if kind.kind == "carried":
                later = self.next_lane(lane)
                self.carries[(loop.block.name, i, kind.ref, later)].append(value)
                if i == 0:
                    self.lanes_seen[arg].add(later)
                return None
            if kind.kind == "invariant":  # read at every step: summed over the steps
                return self.accumulate(arg, value, node, lane)
        elif graph[arg]["op"] == "param":
            return self.outside_terms[arg].append(value)
        elif arg in self.at:  # an outside node reads a loop's last value
            return self.route_final(arg, value, lane)
        return self.add_contribution(arg, lane, value)

    def route_final(self, node: int, value: int, lane: int) -> None:
        """A cotangent from outside for a loop's last value: a whole sequence that is zero
        but at that step, so that every step of the backward loop reads it alike."""
        block, place = self.place_key(node)
        whole = self.graph.add("scatter_step", [value], index=self.graph[node]["step"],
                               steps=self.loops[block].block.steps,
                               dynamic=self.loops[block].block.follows_steps,
                               layer=self.graph[node]["layer"], place=f"d{block}_{place}_last")
        self.add_full(block, place, lane, whole)

    def add_full(self, block: str, place: str, lane: int, whole: int) -> None:
        """A cotangent for a place at every step of a block, as one whole sequence."""
        self.full[(block, place, lane)].append(whole)
        for iteration in self.loops[block].iterations:
            self.lanes_seen[iteration[place]].add(lane)

    def accumulate(self, target: int, value: int, node: int, lane: int) -> None:
        """A value read at every step (a weight, a vector fed to every step): its gradient
        is a running sum over the steps, carried by the backward loop — BPTT's weight
        gradient. Parameters sum all lanes together; other values keep their lane."""
        _, _, i = self.at[node]
        where = self.where(node)
        data = self.graph[target]
        lane = 0 if data["op"] == "param" else lane
        key = (target, where["block"], lane)
        count = self.acc_counts[key + (i,)]
        self.acc_counts[key + (i,)] += 1
        running = self.accumulators.get(key)
        if running is None:
            running = self.zeros_like(target)
        short = self.accumulator_name(target, where, lane)
        if count:  # the running sum's last term at this step keeps the plain name
            self.graph[running]["place"] = f"d{short}+{count}"
        self.accumulators[key] = self.graph.add("add", [running, value], place=f"d{short}",
                                                **where)
        if data["op"] != "param":
            self.lanes_seen[target].add(lane)

    def accumulator_name(self, target: int, where: dict, lane: int) -> str:
        """The name of the running sum of ``target``'s gradient in a backward loop: a
        parameter of the loop's own layer by its short name (``W_hh``), anything else
        qualified by where it lives (``words.W`` of a dense layer fed back, ``E1.h`` of the
        encoder whose final state a one-step decoder reads). Unique in the loop: places
        are identities, and two sums sharing one would be merged."""
        key = (target, where["block"], lane)
        if key not in self.accumulator_names:
            data = self.graph[target]
            if data["op"] == "param":
                name = data["attrs"]["name"]
                if data["layer"] == where["layer"]:
                    name = name.rsplit(".", 1)[-1]
            else:
                owner = data["block"] or data["layer"]
                own = data["place"] or data["attrs"].get("name") or data["op"]
                name = f"{owner}.{own}{self.suffix(lane)}" if owner else \
                    f"{own}{self.suffix(lane)}"
            taken = {(block, place) for (_, block, _), place in self.accumulator_names.items()}
            unique, n = name, 1
            while (where["block"], unique) in taken:
                n += 1
                unique = f"{name}#{n}"
            self.accumulator_names[key] = unique
        return self.accumulator_names[key]

    def param_total(self, param: int):
        parts = [acc for (p, _, _), acc in self.accumulators.items() if p == param]
        parts += self.outside_terms.get(param, [])
        return self.sum_nodes(parts, {}, "grad") if parts else None

    # --- sequences outside loops --------------------------------------------------------
    def propagate_sequence(self, node: int, lane: int, whole: int | None) -> None:
        """A stacked, repeated or concatenated sequence: its cotangent is ``whole`` (for the
        whole sequence, or None) plus pieces for single steps from the loops that read it."""
        graph = self.graph
        op, args = graph[node]["op"], graph.args(node)
        pieces = self.steps.pop((node, lane), {})
        if op == "stack_steps":
            block, place = self.place_key(args[0])
            if whole is not None:
                self.add_full(block, place, lane, whole)
            for t, values in pieces.items():
                for value in values:
                    self.add_contribution(args[t], lane, value)
        elif op == "repeat_steps":
            parts = [self.graph.add("sum_steps", [whole])] if whole is not None else []
            if pieces:
                per_step = [self.sum_nodes(pieces[t], self.step_where(pieces[t][0]), "drepeat")
                            for t in range(len(pieces))]
                parts.append(graph.add("sum_steps", [graph.add("stack_steps", per_step)]))
            if args[0] in self.requires and parts:
                total = self.sum_nodes(parts, {}, "drepeat")
                if args[0] in self.at:  # repeats a loop's last value
                    self.route_final(args[0], total, lane)
                else:
                    self.add_contribution(args[0], lane, total)
        elif op == "concat":
            start = 0
            for arg in args:
                stop = start + graph[arg]["shape"][-1]
                if arg in self.requires:
                    self.slice_into(arg, lane, whole, pieces, start, stop)
                start = stop
        else:
            raise GradientError(f"cannot differentiate the sequence op {op}")

    def step_where(self, node: int) -> dict:
        data = self.graph[node]
        return {"step": data["step"], "layer": data["layer"], "block": data["block"]}

    def slice_into(self, arg, lane, whole, pieces, start, stop) -> None:
        graph = self.graph
        if whole is not None:
            self.add_contribution(arg, lane, graph.add("slice_features", [whole], start=start,
                                                       stop=stop))
        for t, values in pieces.items():
            for value in values:
                where = self.step_where(value)
                part = graph.add("slice_features", [value], start=start, stop=stop,
                                 place=f"{graph[value]['place']}[{start}:{stop}]", **where)
                self.steps[(arg, lane)][t].append(part)
                self.lanes_seen[arg].add(lane)
