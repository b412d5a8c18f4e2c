"""Built-in synthetic tasks for ``rnnc train --task NAME``.

A task makes examples for a spec with one input and one target; it says what it needs
(``Needs``) and a spec that does not fit gets an error saying so.

- ``adding`` (Hochreiter & Schmidhuber 1997): two channels, random values in [0, 1) and
  a marker that is 1 at two steps (one in each half); the target is the sum of the
  two marked values. Predicting 1 scores an MSE of about 0.167.
- ``memory``: a one-hot symbol (of ``features``) at the first step, zeros after; the
  target is that symbol, to be told at the last step (cross-entropy).

A task makes its symbols one-hot; an input or target with ``classes`` gets them as class
ids.
- ``sine``: windows of a sine wave; the target is the next value (the seed's many-to-one
  forecasting over 3 steps).
- ``parity``: a sequence of bits; the target is their parity, one-hot over 2.
- ``reverse`` (reverse.py): an encoder-decoder reads T digits and writes them reversed.
- ``chars:FILE``: a character-level language model on the text of FILE: characters in
  (one-hot, or class ids for an input with ``classes``), the next character out at every
  step (synced many-to-many). Its vocabulary is the text's characters, sorted. Training
  (and validation) windows come from the first nine tenths of the text, test windows from
  the last tenth, which training never reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import RnncError
from ..frontend.spec import Spec
from .reverse import Reverse


@dataclass(frozen=True)
class Needs:
    input_features: int | None  # None: any
    input_sequence: bool
    target_features: int | None
    target_sequence: bool
    loss: str
    input_ids: bool = False  # its inputs are one symbol per step: class ids may take them

    def describe(self) -> str:
        def kind(sequence, features):
            size = "any number of features" if features is None else \
                f"{features} feature{'s' if features != 1 else ''}"
            return f"a {'sequence' if sequence else 'vector'} of {size}"
        ids = f" (or class ids, `classes: {self.input_features}`)" if self.input_ids else ""
        return (f"one input, {kind(self.input_sequence, self.input_features)}{ids}, and one "
                f"target, {kind(self.target_sequence, self.target_features)}, with loss "
                f"{self.loss}")


class Task(Protocol):
    """What a task is: its name, what it needs of a spec, and ``make``: ``count``
    examples of ``steps`` steps (``features``: the spec's input size), as (inputs,
    targets)."""

    name: str
    needs: Needs

    def make(self, count: int, steps: int, features: int, rng: np.random.Generator,
             part: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """``count`` examples (inputs, targets); ``part`` is "train" or "test" (a task
        drawn from a fixed source keeps them apart)."""


class Adding:
    name = "adding"
    needs = Needs(2, True, 1, False, "mse")

    def make(self, count, steps, features, rng, part="train"):
        if steps < 2:
            raise RnncError("task adding needs T >= 2 (two marked steps)")
        values = rng.uniform(0.0, 1.0, (count, steps))
        marker = np.zeros((count, steps))
        half = steps // 2  # one marker in each half
        first = rng.integers(0, half, count)
        second = rng.integers(half, steps, count)
        rows = np.arange(count)
        marker[rows, first] = marker[rows, second] = 1.0
        x = np.stack([values, marker], axis=-1)
        return x, (values * marker).sum(axis=1, keepdims=True)


class Memory:
    name = "memory"
    needs = Needs(None, True, None, False, "cross_entropy")

    def make(self, count, steps, features, rng, part="train"):
        symbols = rng.integers(0, features, count)
        x = np.zeros((count, steps, features))
        x[np.arange(count), 0, symbols] = 1.0
        return x, np.eye(features)[symbols]


class Sine:
    name = "sine"
    needs = Needs(1, True, 1, False, "mse")

    def make(self, count, steps, features, rng, part="train"):
        grid = rng.uniform(0, 2 * np.pi, (count, 1)) + 0.3 * np.arange(steps + 1)
        wave = np.sin(grid)
        return wave[:, :steps, None], wave[:, steps:]


class Parity:
    name = "parity"
    needs = Needs(1, True, 2, False, "cross_entropy")

    def make(self, count, steps, features, rng, part="train"):
        bits = rng.integers(0, 2, (count, steps))
        return bits[..., None].astype(float), np.eye(2)[bits.sum(axis=1) % 2]


class Characters:
    name = "chars"

    def __init__(self, path: str):
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise RnncError(f"cannot read the text for task chars: {path}: {error}") from None
        if len(text) < 2:
            raise RnncError(f"task chars: {path} holds fewer than 2 characters")
        self.alphabet = self.vocabulary = sorted(set(text))
        self.codes = np.array([self.alphabet.index(c) for c in text])
        size = len(self.alphabet)
        self.needs = Needs(size, True, size, True, "cross_entropy", input_ids=True)

    def make(self, count, steps, features, rng, part="train"):
        cut = len(self.codes) * 9 // 10
        codes = self.codes[:cut] if part == "train" else self.codes[cut:]
        if len(codes) < steps + 1:
            share = "first nine tenths" if part == "train" else "last tenth, kept for the test,"
            raise RnncError(f"task chars: the {share} of the text has {len(codes)} "
                            f"characters; T = {steps} needs at least {steps + 1}")
        starts = rng.integers(0, len(codes) - steps, count)
        windows = codes[starts[:, None] + np.arange(steps + 1)]
        eye = np.eye(len(self.alphabet))
        return eye[windows[:, :-1]], eye[windows[:, 1:]]


TASKS = {task.name: task for task in (Adding, Memory, Sine, Parity, Reverse)}


def get_task(name: str) -> Task:
    if name.startswith("chars:"):
        return Characters(name[len("chars:"):])
    if name not in TASKS:
        raise RnncError(f"unknown task '{name}'; tasks: {', '.join(TASKS)}, chars:FILE")
    return TASKS[name]()


def task_data(spec: Spec, task: Task, count: int, steps: int, seed: int,
              part: str = "train") -> dict:
    """``count`` examples of ``task`` named for ``spec``'s input and target."""
    if hasattr(task, "arrays"):  # a task of several inputs names them itself
        return task.arrays(spec, count, steps, np.random.default_rng(seed), part)
    input_name, target_name = check_fit(spec, task)
    features = spec.inputs[input_name].features
    x, y = task.make(count, steps, features, np.random.default_rng(seed), part)
    return {input_name: _as_wanted(x, spec.inputs[input_name], spec.dtype),
            target_name: _as_wanted(y, spec.targets[target_name], spec.dtype)}


def _as_wanted(array: np.ndarray, wanted, dtype: str) -> np.ndarray:
    """A task's array as the spec wants it: one-hot symbols as class ids where it has
    ``classes``, else numbers of its dtype."""
    return array.argmax(-1) if wanted.classes is not None else array.astype(dtype)


def task_vocabularies(spec: Spec, task: Task) -> dict[str, list[str]]:
    """The tokens of the task's class ids (the characters of ``chars:FILE``), for each
    input or target of class ids; none for a task of numbers."""
    tokens = getattr(task, "vocabulary", None)
    if tokens is None:
        return {}
    return {name: list(tokens) for name, array in {**spec.inputs, **spec.targets}.items()
            if array.classes is not None}


def check_fit(spec: Spec, task: Task) -> tuple[str, str]:
    """The spec's input and target names, if the spec fits the task; else a clear error."""
    needs = task.needs
    problem = None
    if len(spec.inputs) != 1 or len(spec.targets) != 1 or spec.loss is None:
        problem = (f"it has {len(spec.inputs)} input(s), {len(spec.targets)} target(s)"
                   + ("" if spec.loss else " and no loss"))
    else:
        (name, x), (target, y) = next(iter(spec.inputs.items())), next(iter(spec.targets.items()))
        wrong = [(what, have, want) for what, have, want in (
            (f"input '{name}' features", x.features, needs.input_features),
            (f"input '{name}' is a sequence", x.sequence, needs.input_sequence),
            (f"target '{target}' features", y.features, needs.target_features),
            (f"target '{target}' is a sequence", y.sequence, needs.target_sequence),
            ("loss", spec.loss.type, needs.loss)) if want is not None and have != want]
        if needs.input_features is None and needs.target_features is None \
                and x.features != y.features:
            wrong.append((f"target '{target}' features", y.features, x.features))
        if x.classes is not None and not needs.input_ids:
            wrong.append((f"input '{name}'", "class ids", "numbers (`features`)"))
        if wrong:
            problem = "; ".join(f"{what}: {have}, needs {want}" for what, have, want in wrong)
        else:
            return name, target
    raise RnncError(f"task {task.name} needs {needs.describe()}; spec {spec.name}: {problem}",
                    spec.source.loc(()))
