"""The NumPy backend: a graph becomes one standalone, readable Python module.

Registered under the entry-point group ``rnncompiler.backends`` as ``numpy``.
"""

from __future__ import annotations

import numpy as np

from rnncompiler.backend import BackendBase, EmitOptions
from rnncompiler.ir.graph import Graph
from rnncompiler.lowering import make_plan
from rnncompiler.writing import save_bytes

from .lowering import LEAVES, LOWERINGS
from .module import ModuleWriter


class NumpyModule:
    """Generated source, which can be saved as a module or run here."""

    def __init__(self, source: str, name: str):
        self.source = source
        self.name = name
        self._namespace = None

    def serialize(self, train: bool = False) -> bytes:
        """The module's source (with its training functions, if compiled with them)."""
        return self.source.encode("utf-8")

    def save(self, path, train: bool = False) -> None:
        save_bytes(path, self.serialize(train))

    def namespace(self) -> dict:
        """The module's globals after running its source (done once)."""
        if self._namespace is None:
            namespace = {"__name__": f"rnnc_generated_{self.name}"}
            exec(compile(self.source, f"<rnnc:{self.name}>", "exec"), namespace)
            self._namespace = namespace
        return self._namespace

    def fingerprint(self) -> bytes:
        """What the module is: two modules with equal fingerprints compute the same."""
        return self.source.encode("utf-8")

    def run(self, params: dict, inputs: dict) -> dict[str, np.ndarray]:
        return self.namespace()["forward"](params, inputs)

    def loss_and_grads(self, params: dict, inputs: dict):
        """(loss, {"grad.<param>": gradient}); for a module compiled with training."""
        return self.namespace()["loss_and_grads"](params, inputs)


class NumpyBackend(BackendBase):
    name = "numpy"
    suffix = ".py"
    ops = frozenset(LOWERINGS) | frozenset(LEAVES)

    def emit(self, graph: Graph, options: EmitOptions | None = None,
             training: Graph | None = None) -> NumpyModule:
        """The module for ``graph`` (forward); with ``training``, also its gradients."""
        options = options or EmitOptions()
        trained = (training, make_plan(training, checkpoint=True)) if training is not None else None
        writer = ModuleWriter((graph, make_plan(graph)), trained, options.spec_file,
                              options.steps if options.steps is not None else graph.steps)
        return NumpyModule(writer.source(), graph.name)
