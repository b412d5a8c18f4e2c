"""Fuse gate products: the products of one vector with several weights at the same step
(an LSTM's ``W_xi @ x``, ``W_xf @ x``, ``W_xc @ x``, ``W_xo @ x``) become one product with
the weights stacked row-wise — the seed's ``tanh(W [h; x])`` — whose slices replace them.

Safe when the weights are the same at every step (parameters): the stacked weight is
built once, before any loop. Backward loops get the transposed form: a sum of products
``W_kᵀ @ g_k`` becomes one ``[W_1; ...; W_n]ᵀ @ [g_1, ..., g_n]``, the sum's other terms
(a GRU's ``dh * z``) added to it (the sum's order changes: values agree to rounding).
"""

from __future__ import annotations

from ..ir.graph import Graph
from ..ir.ops import OP
from .places import LoopBodies, joined_name, value_name


def _invariant_matrix(graph: Graph, node: int) -> bool:
    data = graph[node]
    return not data.batched and data.step is None and len(data.shape) == 2


def fuse_gate_products(graph: Graph) -> bool:
    groups: dict[tuple, list[int]] = {}
    for node, data in graph.items():
        if data.op == OP.matvec and data.step is not None:
            weight, vector = graph.args(node)
            if _invariant_matrix(graph, weight):
                groups.setdefault((data.block, data.step, vector), []).append(node)
    stacked: dict[tuple, int] = {}
    changed = False
    # two products fuse only if they share their vector at every step (at the first step
    # an LSTM started from its own input, ``initial_state: {h: v}`` with ``input: v``,
    # multiplies one vector by all eight weights; at the others, x[t] by four and h[t-1]
    # by four)
    alike = LoopBodies(graph).grouped_alike(groups)
    for (_block, _step, vector, _), members in alike.items():
        if len(members) < 2:
            continue
        members.sort(key=lambda m: (_activation(graph, m), m))
        weights = tuple(graph.args(m)[0] for m in members)
        if weights not in stacked:
            stacked[weights] = graph.add(OP.stack_rows, list(weights),
                                         layer=graph[members[0]].layer,
                                         place=joined_name([value_name(graph, w)
                                                            for w in weights]))
        where = graph[members[0]].where
        fused = graph.add(OP.matvec, [stacked[weights], vector],
                          place=f"gates@{graph[members[0]].place}", **where)
        start = 0
        for member in members:
            size = graph[member].shape[-1]
            part = graph.add(OP.slice_features, [fused], start=start, stop=start + size,
                             place=graph[member].place, **where)
            graph.replace_uses(member, part)
            graph.remove(member)
            start += size
        changed = True
    return fuse_transposed_products(graph) or changed


def _activation(graph: Graph, node: int) -> str:
    """The first op after the sums a gate product feeds (its gate's activation): gates
    with the same activation are stacked next to each other, so that it runs once."""
    for _ in range(8):
        users = graph.users(node)
        if len(users) != 1 or graph[users[0]].op not in (OP.add, OP.sub):
            return graph[users[0]].op if len(users) == 1 else ""
        node = users[0]
    return ""


def fuse_transposed_products(graph: Graph) -> bool:
    """Σ_k W_kᵀ g_k at one step (the gradient a step sends back through its gates)."""
    changed = False
    stacked: dict[tuple, int] = {}
    forward_stacks = {frozenset(graph.args(n)): graph.args(n) for n, d in graph.items()
                      if d.op == OP.stack_rows}
    for node in list(graph.nx.nodes):
        if node not in graph.nx or graph[node].op != OP.add or graph[node].step is None:
            continue
        if any(graph[u].op == OP.add and graph[u].step == graph[node].step
               and graph[u].block == graph[node].block and len(graph.users(node)) == 1
               for u in graph.users(node)):
            continue  # not the top of a chain
        terms = _sum_terms(graph, node)
        here = (graph[node].block, graph[node].step)
        products = [t for t in terms if graph[t].op == OP.matvec_t
                    and (graph[t].block, graph[t].step) == here
                    and _invariant_matrix(graph, graph.args(t)[0]) and len(graph.users(t)) == 1]
        others = [t for t in terms if t not in products]  # a GRU's dh * z, say
        if len(products) < 2:
            continue
        columns = {graph[graph.args(t)[0]].shape[1] for t in products}
        if len(columns) != 1:
            continue
        where = graph[node].where
        products = _forward_order(graph, products, forward_stacks)
        weights = tuple(graph.args(t)[0] for t in products)
        if weights not in stacked:
            stacked[weights] = graph.add(OP.stack_rows, list(weights), layer=graph[node].layer,
                                         place=joined_name([value_name(graph, w)
                                                            for w in weights]))
        weight = stacked[weights]
        grads = graph.add(OP.concat, [graph.args(t)[1] for t in products],
                          place=f"{graph[node].place}.gates", **where)
        total = graph.add(OP.matvec_t, [weight, grads], place=f"{graph[node].place}.fused",
                          **where)
        for i, other in enumerate(others, start=1):  # the other terms, then the product
            place = graph[node].place if i == len(others) else f"{graph[node].place}+{i}"
            total = graph.add(OP.add, [other, total], place=place, **where)
        graph.replace_uses(node, total)
        for dead in dict.fromkeys([node, *_inner_adds(graph, node), *products]):
            graph.remove(dead)  # (once: a sum may add one product twice, p + p)
        changed = True
    return changed


def _forward_order(graph: Graph, products: list[int], stacks: dict) -> list[int]:
    """The products in the order the forward loop stacked their weights, if it did: the
    backward product then reuses the forward's stacked weight, and its gradients line up
    with the forward's gates."""
    weight_of = {graph.args(t)[0]: t for t in products}
    if len(weight_of) != len(products):  # a weight in two products: keep every product
        return products
    order = stacks.get(frozenset(weight_of))
    return [weight_of[w] for w in order] if order else products


def _inner_adds(graph: Graph, node: int) -> list[int]:
    inner = []
    for arg in graph.args(node):
        data = graph[arg]
        if data.op == OP.add and data.step == graph[node].step \
                and data.block == graph[node].block and len(graph.users(arg)) == 1:
            inner += [arg, *_inner_adds(graph, arg)]
    return inner


def _sum_terms(graph: Graph, node: int) -> list[int]:
    """The terms of a chain of single-use adds at one step."""
    data = graph[node]
    if data.op != OP.add:
        return [node]
    terms = []
    for arg in graph.args(node):
        inner = graph[arg]
        if inner.op == OP.add and inner.step == data.step \
                and inner.block == data.block and len(graph.users(arg)) == 1:
            terms += _sum_terms(graph, arg)
        else:
            terms.append(arg)
    return terms
