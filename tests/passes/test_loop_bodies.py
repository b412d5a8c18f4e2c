"""``LoopBodies``, the one way passes rewrite loop bodies: a place is rewritten at every
step, alike, or not at all."""

from __future__ import annotations

import rnncompiler as rc
from rnncompiler.passes.places import LoopBodies

SPEC = """
rnnc: 1
name: small
inputs: {x: {features: 2}}
layers:
  - {name: R, type: rnn, cell: simple, units: 3, input: x, return: sequence}
"""


def _graph(steps=4):
    return rc.unroll(rc.load_spec_text(SPEC), steps)


def _place_nodes(graph, op):
    bodies = LoopBodies(graph)
    return next(nodes for nodes in bodies.places.values() if graph[nodes[0]].op == op)


def test_a_place_is_replaced_at_every_step_or_not_at_all():
    graph = _graph()
    bodies = LoopBodies(graph)
    tanh = _place_nodes(graph, "tanh")
    pre = [graph.args(node)[0] for node in tanh]  # the pre-activation, at every step
    accepted, refused = bodies.replacements(dict(zip(tanh, pre)))
    assert accepted == dict(zip(tanh, pre)) and not refused
    accepted, refused = bodies.replacements({tanh[1]: pre[1]})  # one step only
    assert not accepted and refused == {bodies.key(tanh[1])}


def test_a_value_outside_loops_is_never_replaced_by_a_step():
    graph = _graph()
    bodies = LoopBodies(graph)
    outside = graph.params["R.W_xh"]
    accepted, _ = bodies.replacements({outside: _place_nodes(graph, "tanh")[0]})
    assert outside not in accepted


def test_a_find_counts_only_where_it_is_found_at_every_step():
    graph = _graph()
    bodies = LoopBodies(graph)
    tanh = _place_nodes(graph, "tanh")
    assert bodies.at_every_step({node: "pattern" for node in tanh}) == set(tanh)
    assert bodies.at_every_step({node: "pattern" for node in tanh[:-1]}) == set()
    assert bodies.steps_of(tanh[2]) == tanh


def test_nodes_are_grouped_as_every_step_groups_them():
    """Two places grouped at the first step only are split there too: every step then
    joins the same places."""
    graph = _graph(3)
    bodies = LoopBodies(graph)
    first, second = [nodes for (block, _), nodes in bodies.places.items() if block == "R"][:2]
    groups = {("R", 0, "v"): [first[0], second[0]],  # together at step 0, apart later
              ("R", 1, "a"): [first[1]], ("R", 1, "b"): [second[1]],
              ("R", 2, "a"): [first[2]], ("R", 2, "b"): [second[2]]}
    split = bodies.grouped_alike(groups)
    assert all(len(members) == 1 for members in split.values())
    always = {("R", t, "v"): [first[t], second[t]] for t in range(3)}
    assert all(len(members) == 2 for members in bodies.grouped_alike(always).values())
