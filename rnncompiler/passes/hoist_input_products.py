"""Hoist input products out of the loop: every step's ``W @ x[t]`` becomes one product
``W @ x`` over the whole sequence before the loop, read back one step at a time.

Safe when ``W`` is the same at every step (a parameter, or made from parameters) and
``x`` is a sequence computed before the loop: the product of each step is then a slice
of the product of all steps. Also applies to ``Wᵀ @ g[t]`` in backward loops.

A term added at every step that is the same at every step (a bias) joins the hoisted
product too: ``(W x[t] + U h) + b`` becomes ``(W x + b)[t] + U h``, one addition over all
steps instead of one a step (the sum's order changes: values agree to rounding).
"""

from __future__ import annotations

from ..graph import Graph
from .places import places

PRODUCTS = ("matvec", "matvec_t")


def hoist_input_products(graph: Graph) -> bool:
    return _hoist_products(graph) | _hoist_invariant_terms(graph)


def _hoist_products(graph: Graph) -> bool:
    hoisted: dict[tuple, int] = {}
    changed = False
    for node in list(graph.nx.nodes):
        data = graph[node]
        if data["op"] not in PRODUCTS or data["step"] is None:
            continue
        weight, vector = graph.args(node)
        step_node = graph[vector]
        if graph[weight]["batched"] or graph[weight]["step"] is not None \
                or step_node["op"] != "take_step" or step_node["step"] != data["step"]:
            continue
        (sequence,) = graph.args(vector)
        if graph[sequence]["step"] is not None:
            continue
        key = (data["op"], weight, sequence)
        if key not in hoisted:
            hoisted[key] = graph.add(data["op"], [weight, sequence], layer=data["layer"],
                                     place=f"{data['place']}.all")
        step = graph.add("take_step", [hoisted[key]], index=data["step"], step=data["step"],
                         layer=data["layer"], block=data["block"], place=data["place"])
        for key_name in ("comment",):
            if key_name in data:
                graph[step][key_name] = data[key_name]
        graph.replace_uses(node, step)
        graph.remove(node)
        changed = True
    return changed


def _hoist_invariant_terms(graph: Graph) -> bool:
    found = {}
    for nodes in places(graph).values():
        matches = [_invariant_term(graph, node) for node in nodes]
        if all(matches):
            found.update(zip(nodes, matches))
    hoisted: dict[tuple, int] = {}
    for node, (sequence, invariant, step_node, other, inner) in found.items():
        data = graph[node]
        where = {k: data[k] for k in ("step", "layer", "block")}
        if (sequence, invariant) not in hoisted:
            hoisted[(sequence, invariant)] = graph.add(
                "add", [sequence, invariant], layer=data["layer"],
                place=f"{graph[sequence]['place'] or 'sequence'}.biased")
        single = len(graph.users(step_node)) == 1
        term = graph.add("take_step", [hoisted[(sequence, invariant)]], index=data["step"],
                         place=graph[step_node]["place"] + ("" if single else ".biased"),
                         **where)
        if single:
            graph.remove(step_node)
        total = graph.add("add", [term, other], place=data["place"], **where)
        if "comment" in data:
            graph[total]["comment"] = data["comment"]
        graph.replace_uses(node, total)
        graph.remove(node)
        graph.remove(inner)
    return bool(found)


def _invariant_term(graph: Graph, node: int):
    """``(s[t] + other) + invariant`` with ``s`` computed before the loop: the parts."""
    data = graph[node]
    if data["op"] != "add":
        return None
    for inner, invariant in (graph.args(node), graph.args(node)[::-1]):
        if graph[invariant]["step"] is not None or graph[inner]["op"] != "add" \
                or graph[inner]["step"] != data["step"] or len(graph.users(inner)) != 1 \
                or graph[inner]["block"] != data["block"]:
            continue
        for step_node, other in (graph.args(inner), graph.args(inner)[::-1]):
            step_data = graph[step_node]
            if step_data["op"] == "take_step" and step_data["step"] == data["step"] \
                    and graph[graph.args(step_node)[0]]["step"] is None \
                    and graph[inner]["shape"] == data["shape"]:
                return graph.args(step_node)[0], invariant, step_node, other, inner
    return None
