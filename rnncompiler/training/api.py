"""The Python API of training, as ``rnnc train`` and ``rnnc evaluate`` do it::

    import rnncompiler as rc

    trained = rc.train("specs/char_lm.yaml", task="chars:specs/data/tiny.txt", epochs=5)
    trained.save("char_lm.params.npz")            # the parameters and the vocabulary
    print(trained.history.val_loss, trained.metrics)
    print(rc.evaluate("specs/char_lm.yaml", trained.params, task="chars:...")["loss"])
    print(rc.generate(rc.load_spec("specs/char_lm.yaml"), trained.params, "The ", 200))

A spec is a path or a loaded ``Spec``; data is a path to an .npz file or a dict of arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..api import compile_spec
from ..arrays import check_inputs, check_params, load_npz
from ..errors import RnncError
from ..frontend.spec import Spec, load_spec
from ..vocabulary import as_arrays, split_vocabularies
from ..writing import save_npz
from .checkpoint import History
from .loop import TrainOptions, evaluate_metrics
from .loop import train as train_loop
from .tasks import get_task, task_data, task_vocabularies


@dataclass
class Trained:
    """What ``train`` returns: the parameters (with the vocabularies they read and write,
    as ``vocabulary.<name>``), the history of every epoch, the final test (or validation)
    figures."""

    params: dict
    history: History
    metrics: dict
    vocabularies: dict = field(default_factory=dict)

    def save(self, path) -> None:
        """The parameters and vocabularies as one .npz file (what ``--params`` reads)."""
        save_npz(path, self.params, "the parameters")


@dataclass
class Examples:
    """Training (or evaluation) examples, the task's test examples, and vocabularies."""

    data: dict
    test: dict | None = None
    vocabularies: dict = field(default_factory=dict)


def as_spec(spec) -> Spec:
    return spec if isinstance(spec, Spec) else load_spec(spec)


def load_examples(spec: Spec, data=None, *, task: str | None = None, count: int = 2000,
             steps: int | None = None, seed: int = 0, part: str = "train") -> Examples:
    """The arrays of a data file (or dict), or ``count`` examples of a built-in task (and
    as many test examples; ``part="test"``: the test examples only)."""
    if (data is None) == (task is None):
        raise RnncError("give the data (a file or arrays) or a task, not both")
    if task is not None:
        made = get_task(task)
        steps = steps or spec.unroll.steps
        if steps is None:
            raise RnncError("give the steps T for the task (the spec has no unroll.steps)")
        vocabularies = task_vocabularies(spec, made)
        if part == "test":
            return Examples(task_data(spec, made, count, steps, seed + 1, part="test"),
                            None, vocabularies)
        return Examples(task_data(spec, made, count, steps, seed),
                        task_data(spec, made, count, steps, seed + 1, part="test"),
                        vocabularies)
    file = str(data) if isinstance(data, str | Path) else None
    arrays = load_npz(data, "data") if file else dict(data)
    check_inputs(spec, arrays, steps, file, with_targets=True)  # says which file
    arrays, vocabularies = split_vocabularies(spec, arrays, file)
    return Examples(arrays, None, vocabularies)


def train(spec, data=None, *, task: str | None = None, examples: int = 2000,
          steps: int | None = None, params: dict | None = None, epochs: int = 10,
          batch_size: int = 32, lr: float = 0.01, optimizer: str = "adam",
          clip_norm: float | None = None, seed: int = 0, val_split: float = 0.1,
          backend: str = "numpy", checkpoint: str | None = None, resume: bool = False,
          progress: bool = False) -> Trained:
    """Train ``spec`` on ``data`` or a built-in ``task`` (``rnnc train``'s options by the
    same names); start from ``params`` if given, else from fresh ones drawn with ``seed``."""
    spec = as_spec(spec)
    made = load_examples(spec, data, task=task, count=examples, steps=steps, seed=seed)
    vocabularies = dict(made.vocabularies)
    if params is not None:
        params, carried = split_vocabularies(spec, params)
        vocabularies = {**carried, **vocabularies}
        params = check_params(spec, params)
    options = TrainOptions(epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                           clip_norm=clip_norm, seed=seed, val_split=val_split,
                           backend=backend, checkpoint=checkpoint, resume=resume,
                           progress=progress, steps=steps)
    trained, history, metrics = train_loop(spec, made.data, options, made.test, params)
    return Trained({**trained, **as_arrays(vocabularies)}, history, metrics, vocabularies)


def evaluate(spec, params: dict, data=None, *, task: str | None = None,
             examples: int = 2000, steps: int | None = None, seed: int = 0,
             batch_size: int = 256, backend: str = "numpy") -> dict:
    """The loss and ``accuracy`` (cross-entropy) or ``mse`` of ``params`` on ``data``, or
    on a task's test examples, over the steps that count."""
    spec = as_spec(spec)
    if spec.loss is None:
        raise RnncError("evaluation needs a `loss:` in the spec", spec.source.loc(()))
    made = load_examples(spec, data, task=task, count=examples, steps=steps, seed=seed,
                    part="test")
    arrays, steps = check_inputs(spec, made.data, steps, with_targets=True)
    params = check_params(spec, params)
    artifact = compile_spec(spec, backend, steps, train=True)
    metrics = evaluate_metrics(spec, artifact, params, arrays, batch_size)
    metrics["examples"] = len(next(iter(arrays.values())))
    return {key: float(value) if isinstance(value, np.floating) else value
            for key, value in metrics.items()}
