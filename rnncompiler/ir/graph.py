"""The IR: a thin class over ``networkx.MultiDiGraph`` (a DiGraph that allows the same
argument twice, as in ``h * h``).

Nodes carry ``op``, ``attrs``, ``shape`` (per example), ``batched``, ``dtype``, ``step``
(the input position a per-step node belongs to, else None), ``layer``, ``block`` (the
recurrence a per-step node is part of: a layer, or ``<layer>.fwd``/``<layer>.bwd``) and
``place`` (its place in the cell, the same at every step). Edge keys are argument
positions. A parameter is ONE node, with an edge to every step that uses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import networkx as nx

from . import ops
from .ops import OP


@dataclass(frozen=True)
class Block:
    """A recurrence: the per-step nodes of one layer (direction), run in ``order``."""

    name: str
    layer: str
    steps: int
    backward: bool = False
    cell: str | None = None
    gradient_of: str | None = None  # for a backward loop: the block it differentiates
    follows_steps: bool = False  # its length is T, which a model may leave to run time
    feedback: str | None = None  # a dense layer computed in the loop and fed back

    @cached_property
    def order(self) -> list[int]:
        """Steps in the order they run (input positions)."""
        return list(range(self.steps - 1, -1, -1) if self.backward else range(self.steps))

    @cached_property
    def index(self) -> dict[int, int]:
        """Step -> the iteration that runs it."""
        return {t: i for i, t in enumerate(self.order)}


class Graph:
    def __init__(self, name: str = "graph", dtype: str = "float32"):
        self.nx = nx.MultiDiGraph(name=name, dtype=dtype)
        self.name = name
        self.dtype = dtype
        self.inputs: dict[str, int] = {}
        self.params: dict[str, int] = {}
        self.outputs: dict[str, int] = {}
        self.layer_values: dict[str, int] = {}  # layer name -> the node of its value
        self.blocks: dict[str, Block] = {}
        self.steps: int | None = None  # T, the length of sequences that follow it
        self.follows_steps: set[str] = set()  # inputs, targets and layers whose length is T
        self.masks: dict[str, int] = {}  # a sequence with variable lengths -> its mask
        self.starts: dict[tuple, int] = {}  # (block, state) -> the value its state starts from
        self._next_id = 0
        self._consts: dict[float, int] = {}

    # --- building ---------------------------------------------------------------------
    def add(self, op: str, args=(), *, step=None, layer=None, block=None, place=None,
            **attrs) -> int:
        """Add a node; its shape comes from the op's shape rule."""
        definition = ops.get(op)
        args = list(args)
        if definition.arity is not None and len(args) != definition.arity:
            raise ops.ShapeError(f"{op} takes {definition.arity} arguments, got {len(args)}")
        shapes = [self.nx.nodes[a]["shape"] for a in args]
        shape = tuple(definition.shape(shapes, attrs))
        batched = attrs.pop("batched", None)
        if definition.unbatched:
            batched = False
        elif batched is None:
            batched = any(self.nx.nodes[a]["batched"] for a in args)
        node = self._next_id
        self._next_id += 1
        self.nx.add_node(node, op=op, attrs=attrs, shape=shape, batched=batched,
                         dtype=self.dtype, step=step, layer=layer, block=block, place=place,
                         args=tuple(args))
        for position, arg in enumerate(args):
            self.nx.add_edge(arg, node, key=position)
        return node

    def add_input(self, name: str, shape: tuple) -> int:
        self.inputs[name] = self.add(OP.input, name=name, shape=tuple(shape), batched=True)
        return self.inputs[name]

    def add_param(self, name: str, shape: tuple, init: str, layer: str) -> int:
        self.params[name] = self.add(OP.param, layer=layer, name=name, shape=tuple(shape),
                                     init=init, batched=False)
        return self.params[name]

    def zeros_like_param(self, param: int, **where) -> int:
        shape = self.nx.nodes[param]["shape"]
        return self.add(OP.zeros_shaped, shape=shape, dtype=self.dtype, **where)

    def const(self, value: float) -> int:
        """The scalar ``value``; one node per distinct value."""
        value = float(value)
        if value not in self._consts:
            self._consts[value] = self.add(OP.const, value=value, batched=False)
        return self._consts[value]

    def where(self, node: int) -> dict:
        """Where ``node`` sits (step, layer, block), as ``add`` takes it: a node made to
        stand for another goes where it was."""
        data = self.nx.nodes[node]
        return {"step": data["step"], "layer": data["layer"], "block": data["block"]}

    # --- rewriting (for passes) ---------------------------------------------------------
    def replace_uses(self, old: int, new: int) -> None:
        """Every use of ``old`` (as an argument or an output) becomes a use of ``new``."""
        for user in self.users(old):
            args = [new if a == old else a for a in self.nx.nodes[user]["args"]]
            self.set_args(user, args)
        for name, node in self.outputs.items():
            if node == old:
                self.outputs[name] = new
        for table in (self.layer_values, self.starts):
            for name, node in table.items():
                if node == old:
                    table[name] = new

    def substitute(self, old: int, new: int) -> None:
        """``old`` replaced by ``new`` (a node equal to it, or made to stand for it): every
        use moves to ``new``, ``old``'s comment too where ``new`` has none, and ``old``
        goes. The one way passes replace a node."""
        if "comment" in self.nx.nodes[old] and "comment" not in self.nx.nodes[new]:
            self.nx.nodes[new]["comment"] = self.nx.nodes[old]["comment"]
        self.replace_uses(old, new)
        self.remove(old)

    def set_args(self, node: int, args) -> None:
        for source, _, key in list(self.nx.in_edges(node, keys=True)):
            self.nx.remove_edge(source, node, key=key)
        for position, arg in enumerate(args):
            self.nx.add_edge(arg, node, key=position)
        self.nx.nodes[node]["args"] = tuple(args)

    def remove(self, node: int) -> None:
        self.nx.remove_node(node)
        for table in (self.inputs, self.params):
            for name in [n for n, v in table.items() if v == node]:
                del table[name]
        self._consts = {v: n for v, n in self._consts.items() if n != node}
        self.starts = {key: start for key, start in self.starts.items() if start != node}

    # --- reading ----------------------------------------------------------------------
    # (through networkx's own node and successor dicts, ``_node`` and ``_succ``: the
    # views ``nx.nodes[n]`` and ``out_edges`` cost more than the passes' own work at
    # T = 1000)
    def __getitem__(self, node: int) -> dict:
        return self.nx._node[node]

    def __len__(self) -> int:
        return self.nx.number_of_nodes()

    def args(self, node: int) -> list[int]:
        """The node's arguments, in order (the edges carry the same, keyed by position)."""
        return list(self.nx._node[node]["args"])

    def users(self, node: int) -> list[int]:
        return sorted(self.nx._succ[node])

    def topological_order(self) -> list[int]:
        """Every node after its arguments; among those ready, the oldest first."""
        return list(nx.lexicographical_topological_sort(self.nx))

    def evaluation_order(self) -> list[int]:
        """Every node after its arguments (faster than ``topological_order``, for
        passes, which need no particular order among the nodes ready)."""
        waiting = {node: len(data["args"]) for node, data in self.nx._node.items()}
        ready = [node for node, count in waiting.items() if count == 0]
        order = []
        while ready:
            node = ready.pop()
            order.append(node)
            for user, edges in self.nx._succ[node].items():
                waiting[user] -= len(edges)  # h * h: one edge per argument position
                if waiting[user] == 0:
                    ready.append(user)
        return order

    def verify(self) -> None:
        """Internal invariants: acyclic, argument positions dense, shapes as the ops say."""
        assert nx.is_directed_acyclic_graph(self.nx), "graph has a cycle"
        for node in self.nx.nodes:
            data = self.nx.nodes[node]
            args = self.args(node)
            edges = sorted(self.nx.in_edges(node, keys=True), key=lambda edge: edge[2])
            assert [source for source, _, _ in edges] == args, f"node {node}: edges != args"
            shapes = [self.nx.nodes[a]["shape"] for a in args]
            expected = tuple(ops.get(data["op"]).shape(shapes, data["attrs"]))
            assert expected == data["shape"], f"node {node}: shape {data['shape']} != {expected}"
