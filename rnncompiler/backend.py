"""The backend protocol, and finding backends by entry point.

A backend is a plugin registered under the entry-point group ``rnncompiler.backends``, in
this project's ``pyproject.toml`` exactly as a third party would register one. It lowers
a graph to an ``Artifact`` that can be saved and run; it does not rewrite the math.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    params: dict | None = None  # values to embed (a model that carries its parameters)
    own: dict = field(default_factory=dict)  # the backend's own options (Backend.options)


@runtime_checkable
class Artifact(Protocol):
    def serialize(self, train: bool = False) -> bytes:
        """The artifact as the file ``rnnc compile`` writes (the training graph's, where a
        backend keeps it apart, if ``train``)."""

    def save(self, path, train: bool = False) -> None:
        """``serialize``'s bytes written to ``path``, whole or not at all (``writing.py``)."""

    def run(self, params: dict, inputs: dict) -> dict[str, np.ndarray]:
        """Outputs keyed as ``rnnc run`` writes them."""


class Backend(Protocol):
    name: str
    ops: frozenset  # every op it lowers
    suffix: str  # of the files it writes: `rnnc compile -o net<suffix>` chooses it
    options: frozenset  # the names of its own options (EmitOptions.own); see CLI_GROUP

    def emit(self, graph: Graph, options: EmitOptions, training: Graph | None = None) -> Artifact:
        """Lower ``graph`` (the forward pass) to an artifact; with ``training`` (the graph
        whose outputs are ``loss`` and ``grad.<param>``), one that can also train."""

    def forward_level(self, options: EmitOptions, level: int) -> int:
        """The optimisation level for the forward graph (a backend may want it less
        rewritten than ``level``)."""

    def writes_every_step(self, options: EmitOptions) -> bool:
        """Whether the artifact writes out every step (it cannot be compiled at a few
        steps and serve any T)."""


class BackendBase:
    """The defaults of the protocol, for a backend to inherit."""

    suffix = ""
    options = frozenset()

    def forward_level(self, options: EmitOptions, level: int) -> int:
        return level

    def writes_every_step(self, options: EmitOptions) -> bool:
        return False


# A backend's command-line options: an entry point of this group, named as the backend,
# is a function that adds them to an argparse group. It is loaded for `rnnc --help`, so
# its module must import nothing heavy.
CLI_GROUP = "rnncompiler.backend_options"


def backend_options(backend: Backend, given: dict) -> dict:
    """``given`` (None meaning not given) checked against the backend's own options."""
    given = {name: value for name, value in given.items() if value is not None}
    unknown = sorted(set(given) - backend.options)
    if unknown:
        takes = one_of(sorted(backend.options)) if backend.options else "none"
        raise RnncError(f"backend '{backend.name}' has no option '{unknown[0]}'"
                        f"{did_you_mean(unknown[0], backend.options)}; its options: {takes}")
    return given


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
    missing = sorted({data.op for _, data in graph.items()} - backend.ops)
    if missing:
        raise RnncError(f"backend '{backend.name}' cannot lower op(s) {', '.join(missing)}")
