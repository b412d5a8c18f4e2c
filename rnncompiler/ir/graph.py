"""The IR: a thin class over ``networkx.MultiDiGraph`` (a DiGraph that allows the same
argument twice, as in ``h * h``).

Each node id has a ``Node`` (``graph[node]``): frozen, changed only through the graph
(``update``, ``set_args``), so that what a pass reads is what the graph holds. Edge keys
are argument positions. A parameter is ONE node, with an edge to every step that uses it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
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


@dataclass(frozen=True, eq=False)
class Node:
    """One value of the graph."""

    op: str
    args: tuple  # the argument nodes, in order (the edges say the same, keyed by position)
    attrs: dict  # the op's attributes (an input's name, a slice's range, ...)
    shape: tuple  # per example
    batched: bool  # a value per example (inputs and what they reach), or one (parameters)
    dtype: str
    step: int | None = None  # the input position a per-step node belongs to
    layer: str | None = None
    block: str | None = None  # the recurrence (a layer, <layer>.fwd/.bwd) of a per-step node
    place: str | None = None  # its place in the cell, the same at every step
    comment: str | None = None  # the equation or layer it computes, for readers
    cotangent: int | None = None  # in a training graph, the node of ∂loss/∂it (grad flow)

    @property
    def where(self) -> dict:
        """Where it sits (step, layer, block), as ``Graph.add`` takes it: a node made to
        stand for another goes where it was."""
        return {"step": self.step, "layer": self.layer, "block": self.block}

    def changed(self, **changes) -> Node:
        """A copy with ``changes`` (``dataclasses.replace`` without its per-field work:
        passes change tens of thousands of nodes at long sequences)."""
        unknown = changes.keys() - NODE_FIELDS
        if unknown:
            raise TypeError(f"a node has no {sorted(unknown)}")
        copy = object.__new__(Node)
        copy.__dict__.update(self.__dict__, **changes)
        return copy


NODE_FIELDS = frozenset(field.name for field in fields(Node))


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
        self.sources: dict[str, int] = {}  # block -> what it reads: its sequence, or a vector
        # a training graph's unroll.checkpoint (k, "auto" or None): the loop plan keeps the
        # forward states every k steps and recomputes the rest in the backward pass
        self.checkpoint: int | str | None = None
        self._nodes: dict[int, Node] = {}
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
        shapes = [self._nodes[a].shape for a in args]
        shape = tuple(definition.shape(shapes, attrs))
        batched = attrs.pop("batched", None)
        if definition.unbatched:
            batched = False
        elif batched is None:
            batched = any(self._nodes[a].batched for a in args)
        node = self._next_id
        self._next_id += 1
        self._nodes[node] = Node(op, tuple(args), attrs, shape, batched, self.dtype, step,
                                 layer, block, place)
        self.nx.add_node(node)
        for position, arg in enumerate(args):
            self.nx.add_edge(arg, node, key=position)
        return node

    def add_input(self, name: str, shape: tuple) -> int:
        self.inputs[name] = self.add(OP.input, name=name, shape=tuple(shape), batched=True)
        return self.inputs[name]

    def add_param(self, name: str, shape: tuple, init: str, layer: str,
                  zero_row: int | None = None) -> int:
        """A parameter; ``zero_row``: a row that starts at zeros (an embedding's padding)."""
        extra = {} if zero_row is None else {"zero_row": zero_row}
        self.params[name] = self.add(OP.param, layer=layer, name=name, shape=tuple(shape),
                                     init=init, batched=False, **extra)
        return self.params[name]

    def zeros_like_param(self, param: int, **where) -> int:
        shape = self._nodes[param].shape
        return self.add(OP.zeros_shaped, shape=shape, dtype=self.dtype, **where)

    def const(self, value: float) -> int:
        """The scalar ``value``; one node per distinct value."""
        value = float(value)
        if value not in self._consts:
            self._consts[value] = self.add(OP.const, value=value, batched=False)
        return self._consts[value]

    def update(self, node: int, **changes) -> None:
        """The node's place, comment or other description changed; its op and arguments
        stay (a node that computes something else is a new node; ``set_args`` moves its
        arguments)."""
        if changes.keys() & {"op", "args"}:
            raise TypeError("a node's op and arguments are not updated: add a new node")
        self._nodes[node] = self._nodes[node].changed(**changes)

    # --- rewriting (for passes) ---------------------------------------------------------
    def replace_uses(self, old: int, new: int) -> None:
        """Every use of ``old`` (as an argument or an output) becomes a use of ``new``."""
        for user in self.users(old):
            args = [new if a == old else a for a in self._nodes[user].args]
            self.set_args(user, args)
        for name, node in self.outputs.items():
            if node == old:
                self.outputs[name] = new
        for table in (self.layer_values, self.starts, self.sources):
            for name, node in table.items():
                if node == old:
                    table[name] = new

    def substitute(self, old: int, new: int) -> None:
        """``old`` replaced by ``new`` (a node equal to it, or made to stand for it): every
        use moves to ``new``, ``old``'s comment too where ``new`` has none, and ``old``
        goes. The one way passes replace a node."""
        comment = self._nodes[old].comment
        if comment is not None and self._nodes[new].comment is None:
            self.update(new, comment=comment)
        self.replace_uses(old, new)
        self.remove(old)

    def set_args(self, node: int, args) -> None:
        for source, _, key in list(self.nx.in_edges(node, keys=True)):
            self.nx.remove_edge(source, node, key=key)
        for position, arg in enumerate(args):
            self.nx.add_edge(arg, node, key=position)
        self._nodes[node] = self._nodes[node].changed(args=tuple(args))

    def remove(self, node: int) -> None:
        self.nx.remove_node(node)
        del self._nodes[node]
        for table in (self.inputs, self.params):
            for name in [n for n, v in table.items() if v == node]:
                del table[name]
        self._consts = {v: n for v, n in self._consts.items() if n != node}
        self.starts = {key: start for key, start in self.starts.items() if start != node}
        self.sources = {key: source for key, source in self.sources.items() if source != node}

    # --- reading ----------------------------------------------------------------------
    # (users through networkx's own successor dict, ``_succ``: the view ``out_edges``
    # costs more than the passes' own work at T = 1000)
    def __getitem__(self, node: int) -> Node:
        return self._nodes[node]

    def items(self):
        """(node id, Node) of every node."""
        return self._nodes.items()

    def __len__(self) -> int:
        return self.nx.number_of_nodes()

    def args(self, node: int) -> list[int]:
        """The node's arguments, in order (the edges carry the same, keyed by position)."""
        return list(self._nodes[node].args)

    def users(self, node: int) -> list[int]:
        return sorted(self.nx._succ[node])

    def topological_order(self) -> list[int]:
        """Every node after its arguments; among those ready, the oldest first."""
        return list(nx.lexicographical_topological_sort(self.nx))

    def evaluation_order(self) -> list[int]:
        """Every node after its arguments (faster than ``topological_order``, for
        passes, which need no particular order among the nodes ready)."""
        waiting = {node: len(data.args) for node, data in self._nodes.items()}
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
            data = self._nodes[node]
            args = self.args(node)
            edges = sorted(self.nx.in_edges(node, keys=True), key=lambda edge: edge[2])
            assert [source for source, _, _ in edges] == args, f"node {node}: edges != args"
            shapes = [self._nodes[a].shape for a in args]
            expected = tuple(ops.get(data.op).shape(shapes, data.attrs))
            assert expected == data.shape, f"node {node}: shape {data.shape} != {expected}"
