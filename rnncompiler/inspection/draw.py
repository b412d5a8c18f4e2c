"""Pictures of the unrolled graph with matplotlib (no Graphviz needed): a column per
step, the cell's nodes stacked in it, every parameter drawn ONCE at the left with a line
to every step that uses it; gradient nodes in red below the forward ones. Beyond five
steps the picture shows the first two and the last step, with "..." between."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, no screen
import matplotlib.pyplot as plt

from ..ir.graph import Graph
from ..ir.ops import OP
from .export import shown_steps, visible_nodes

COLORS = {OP.param: "#f5e79e", OP.input: "#b8e6b8", "forward": "#d6e6f5",
          "gradient": "#f5c6c6", "outside": "#eeeeee"}


def _positions(graph: Graph, nodes: list[int]) -> dict[int, tuple[float, float]]:
    keep = shown_steps(graph)
    steps = sorted({graph[n].step for n in nodes if graph[n].step is not None})
    column = {t: i + 1 for i, t in enumerate(steps)}
    last = len(steps) + 1
    rows: dict[float, int] = {}
    positions = {}
    for node in sorted(nodes, key=lambda n: (graph[n].block or "", n)):
        data = graph[node]
        gradient = bool(data.block and graph.blocks[data.block].gradient_of)
        if data.op in (OP.param, OP.input):
            x = 0.0
        elif data.step is None:
            x = last if not gradient else last + 0.5
        else:
            x = float(column[data.step])
        if keep is not None and data.step == max(keep) and x > 2:
            x += 0.5  # room for the "..."
        rows[x] = rows.get(x, 0) + 1
        y = -rows[x] - (1000 if gradient and data.step is not None else 0)
        positions[node] = (x, y)
    # gradient rows sit just below the forward rows of the same column
    lowest = min((y for _, y in positions.values() if y > -1000), default=0)
    for node, (x, y) in positions.items():
        if y <= -1000:
            positions[node] = (x, lowest - 1 + (y + 1000))
    return positions


def draw(graph: Graph, path: str, title: str) -> None:
    nodes = visible_nodes(graph)
    positions = _positions(graph, nodes)
    shown = set(nodes)
    height = max(4.0, 0.22 * (max(-y for _, y in positions.values()) + 2))
    width = max(6.0, 2.2 * (max(x for x, _ in positions.values()) + 1))
    figure, axes = plt.subplots(figsize=(min(width, 60), min(height, 200)))
    for source, target in graph.nx.edges():
        if source in shown and target in shown:
            (x0, y0), (x1, y1) = positions[source], positions[target]
            weight = graph[source].op == OP.param
            axes.plot([x0, x1], [y0, y1], color="#c9a227" if weight else "#999999",
                      linewidth=0.4 if weight else 0.6, alpha=0.6, zorder=1)
    for node in nodes:
        data = graph[node]
        x, y = positions[node]
        gradient = bool(data.block and graph.blocks[data.block].gradient_of)
        kind = data.op if data.op in (OP.param, OP.input) else (
            "gradient" if gradient else "forward" if data.step is not None else "outside")
        text = data.attrs["name"] if data.op in (OP.param, OP.input) else (
            f"{data.op} {data.place}" if data.place else data.op)
        axes.text(x, y, text, fontsize=5, ha="center", va="center", zorder=2,
                  bbox={"boxstyle": "round,pad=0.2", "facecolor": COLORS[kind],
                        "edgecolor": "#555555", "linewidth": 0.3})
    keep = shown_steps(graph)
    if keep is not None:
        axes.text(2.75, -1, "...", fontsize=14, ha="center")
    steps = sorted({graph[n].step for n in nodes if graph[n].step is not None})
    for i, step in enumerate(steps):
        x = i + 1 + (0.5 if keep is not None and step == max(keep) and i + 1 > 2 else 0)
        axes.text(x, 0.2, f"t = {step}", fontsize=7, ha="center", weight="bold")
    axes.set_title(title, fontsize=9)
    axes.axis("off")
    axes.margins(0.05)
    figure.tight_layout()
    figure.savefig(path, dpi=150)
    plt.close(figure)
