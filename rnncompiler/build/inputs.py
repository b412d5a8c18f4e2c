"""The graph's inputs of arrays: numbers, class ids, and the lengths of sequences with
``lengths: true`` with the masks they give."""

from __future__ import annotations

from ..ir.graph import Graph
from ..ir.ops import OP


def add_array_input(graph: Graph, array, steps: int | None) -> int:
    """The input node of an input or target: numbers [steps, features] or [features], or
    class ids [steps] or [] (ints, marked ``classes``)."""
    width = () if array.classes is not None else (array.features,)
    node = graph.add_input(array.name, ((steps,) if array.sequence else ()) + width)
    if array.classes is not None:
        graph[node].attrs.update(integer=True, classes=array.classes)
    return node


def add_lengths(graph: Graph, name: str, sequence: int) -> int:
    """The input ``<name>.lengths`` (int, [batch]) and the mask of ``sequence`` it gives
    (of numbers: class ids are masked where they are embedded or made one-hot)."""
    return length_mask(graph, name, add_lengths_input(graph, name), sequence)


def add_lengths_input(graph: Graph, name: str) -> int:
    lengths = graph.add_input(f"{name}.lengths", ())
    graph[lengths].attrs["integer"] = True
    return lengths


def length_mask(graph: Graph, name: str, lengths: int, sequence: int) -> int:
    """The mask [T, 1] of ``sequence``: 1 at the steps each example has."""
    return graph.add(OP.sequence_mask, [lengths, sequence], place=f"{name}.mask")
