"""The graph as data: JSON (networkx node-link), GraphML (Gephi, yEd) and DOT.

Every node carries ``op`` (``param`` for a parameter, ``input`` for an input), ``step``
(an int, or null outside the loops), ``layer``, ``block``, ``place`` and ``shape`` (per
example; parameters in full); parameters and inputs also ``name``; gradient nodes
``gradient: true``. The graph carries ``name``, ``dtype``, ``steps`` and ``outputs``
(output name -> node id). Edges carry ``position``, the argument position.
"""

from __future__ import annotations

import json

import networkx as nx

from ..ir.graph import Graph
from ..ir.ops import OP

SHOWN_STEPS = 5  # beyond this, pictures show the first steps, "...", and the last step


def _node_record(graph: Graph, node: int) -> dict:
    data = graph[node]
    record = {"op": data.op, "step": data.step, "layer": data.layer,
              "block": data.block, "place": data.place, "shape": list(data.shape),
              "batched": data.batched,
              "gradient": bool(data.block and graph.blocks[data.block].gradient_of)}
    if data.op in (OP.param, OP.input):
        record["name"] = data.attrs["name"]
    return record


def as_networkx(graph: Graph) -> nx.MultiDiGraph:
    """A plain networkx graph with JSON-friendly attributes only."""
    plain = nx.MultiDiGraph(name=graph.name, dtype=graph.dtype, steps=graph.steps,
                            outputs=dict(graph.outputs))
    for node in graph.nx.nodes:
        plain.add_node(node, **_node_record(graph, node))
    for source, target, key in graph.nx.edges(keys=True):
        plain.add_edge(source, target, key=key, position=key)
    return plain


def to_json(graph: Graph) -> str:
    data = nx.node_link_data(as_networkx(graph), edges="edges")
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def to_graphml(graph: Graph) -> str:
    plain = as_networkx(graph)
    for _, data in plain.nodes(data=True):  # GraphML holds scalars: no None, no lists
        for key, value in list(data.items()):
            if value is None:
                data[key] = -1 if key == "step" else ""
            elif isinstance(value, list):
                data[key] = "x".join(map(str, value))
    plain.graph = {"name": graph.name, "dtype": graph.dtype, "steps": graph.steps or -1}
    return "\n".join(nx.generate_graphml(plain)) + "\n"


def shown_steps(graph: Graph) -> set | None:
    """The steps a picture shows: all up to SHOWN_STEPS, else the first two and the last."""
    steps = max((b.steps for b in graph.blocks.values()), default=0)
    if steps <= SHOWN_STEPS:
        return None
    return {0, 1, steps - 1}


def visible_nodes(graph: Graph) -> list[int]:
    keep = shown_steps(graph)
    return [n for n in graph.nx.nodes
            if keep is None or graph[n].step is None or graph[n].step in keep]


def label(graph: Graph, node: int) -> str:
    data = graph[node]
    if data.op in (OP.param, OP.input):
        return f"{data.attrs['name']}\\n{list(data.shape)}"
    return f"{data.op}\\n{data.place}" if data.place else data.op


def to_dot(graph: Graph) -> str:
    """Columns by step, a cluster per block and step, every parameter once."""
    nodes = set(visible_nodes(graph))
    lines = [f'digraph "{graph.name}" {{', "  rankdir=LR; newrank=true;",
             '  node [shape=box, fontsize=9, style="rounded,filled", fillcolor=white];']
    clusters: dict[tuple, list[int]] = {}
    for node in sorted(nodes):
        data = graph[node]
        if data.step is not None:
            clusters.setdefault((data.block, data.step), []).append(node)
    for i, ((block, step), members) in enumerate(sorted(clusters.items(), key=str)):
        backward = graph.blocks[block].gradient_of is not None
        color = "mistyrose" if backward else "aliceblue"
        lines.append(f'  subgraph cluster_{i} {{ label="{block} t={step}"; style=filled; '
                     f'fillcolor={color};')
        lines += [f'    n{n} [label="{label(graph, n)}"];' for n in members]
        lines.append("  }")
    for node in sorted(nodes):
        data = graph[node]
        if data.step is None:
            style = {OP.param: "fillcolor=lightyellow, shape=ellipse",
                     OP.input: "fillcolor=palegreen, shape=ellipse"}.get(data.op, "")
            extra = f", {style}" if style else ""
            lines.append(f'  n{node} [label="{label(graph, node)}"{extra}];')
    for source, target in graph.nx.edges():
        if source in nodes and target in nodes:
            lines.append(f"  n{source} -> n{target};")
    keep = shown_steps(graph)
    if keep is not None:
        hidden = max(b.steps for b in graph.blocks.values()) - len(keep)
        lines.append(f'  skipped [label="... {hidden} more steps, the same ...", shape=plain];')
    lines.append("}")
    return "\n".join(lines) + "\n"
