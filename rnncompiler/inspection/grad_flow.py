"""‖∂L/∂h_t‖ for every step and recurrent layer: how much of the loss's gradient reaches
each step's output — the seed's vanishing-gradient story, measured."""

from __future__ import annotations

import numpy as np

from ..ir.evaluate import evaluate_all
from ..ir.graph import Graph


def gradient_norms(graph: Graph, cells: dict, params: dict, data: dict) -> dict:
    """{layer block: [(step, norm)]} from a training graph (full BPTT) and its data."""
    values = evaluate_all(graph, params, data)
    norms: dict[str, list] = {}
    for name, block in graph.blocks.items():
        if block.gradient_of or not block.cell:
            continue
        output = cells[block.cell].output  # each step's output state, and its cotangent
        rows = [(d.step, float(np.linalg.norm(values[d.cotangent])))
                for _, d in graph.items()
                if d.block == name and d.place == output and d.cotangent is not None]
        norms[name] = sorted(rows)
    return norms


def plot(norms: dict, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.5))
    for layer, rows in norms.items():
        axes.semilogy([t for t, _ in rows], [max(n, 1e-30) for _, n in rows], marker=".",
                      label=layer)
    axes.set_xlabel("step t")
    axes.set_ylabel("‖∂L/∂h_t‖")
    axes.set_title(title, fontsize=9)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=150)
    plt.close(figure)


def to_csv(norms: dict) -> str:
    lines = ["layer,step,norm"]
    lines += [f"{layer},{step},{norm:.6g}" for layer, rows in norms.items()
              for step, norm in rows]
    return "\n".join(lines) + "\n"
