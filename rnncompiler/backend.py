"""The backend protocol, and finding backends by entry point.

A backend is a plugin registered under the entry-point group ``rnncompiler.backends``, in
this project's ``pyproject.toml`` exactly as a third party would register one. It lowers
a graph to an ``Artifact`` that can be saved and run; it does not rewrite the math.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .errors import RnncError, did_you_mean, one_of

if TYPE_CHECKING:  # importing this module costs no numpy (rnnc --help lists the backends)
    import numpy as np

    from .ir.graph import Graph

GROUP = "rnncompiler.backends"


@dataclass(frozen=True)
class EmitOptions:
    """What a backend needs besides the graph."""

    spec_file: str | None = None
    steps: int | None = None
    params: dict | None = None  # values to embed (ONNX initializers)
    onnx_mode: str | None = None  # unrolled | scan | native
    device: str | None = None  # cpu | cuda


@runtime_checkable
class Artifact(Protocol):
    def save(self, path) -> None:
        """Write the artifact (a module, a model) to ``path``."""

    def run(self, params: dict, inputs: dict) -> dict[str, np.ndarray]:
        """Outputs keyed as ``rnnc run`` writes them."""


class Backend(Protocol):
    name: str
    ops: frozenset

    def emit(self, graph: Graph, options: EmitOptions, training: Graph | None = None) -> Artifact:
        """Lower ``graph`` (the forward pass) to an artifact; with ``training`` (the graph
        whose outputs are ``loss`` and ``grad.<param>``), one that can also train."""


def available_backends() -> dict:
    """Entry points of every installed backend, by name."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def get_backend(name: str) -> Backend:
    found = available_backends()
    if name not in found:
        raise RnncError(f"unknown backend '{name}'{did_you_mean(name, found)}; installed: "
                        f"{one_of(sorted(found))}")
    backend = found[name].load()()
    return backend


def check_supported(backend: Backend, graph: Graph) -> None:
    """Every op of ``graph`` must be one the backend lowers."""
    missing = sorted({data["op"] for _, data in graph.nx.nodes(data=True)} - backend.ops)
    if missing:
        raise RnncError(f"backend '{backend.name}' cannot lower op(s) {', '.join(missing)}")
