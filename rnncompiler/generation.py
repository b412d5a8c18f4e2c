"""Autoregressive generation from a language model: each sampled token is fed back as the
next step's input (``rnnc generate``, ``rncompiler.generate``).

A language model here is a spec with one input, a sequence of class ids (or of one-hot
numbers), and an output that gives one score per token at every step: the loss's output
(logits, or a softmax layer's probabilities), else the last output. The model runs one
step at a time with its states as inputs and outputs (``--state-io``): the prompt in one
call, then one call per token, so no prefix is ever computed twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .api import compile_spec
from .arrays import check_params
from .build.unroll import state_inputs
from .errors import RnncError
from .frontend.spec import Spec
from .vocabulary import decode, encode


@dataclass
class Sampling:
    """How the next token is drawn from the scores: greedy (the most likely), else from
    the softmax of scores / ``temperature``, among the ``top_k`` most likely if given."""

    temperature: float = 1.0
    top_k: int | None = None
    greedy: bool = False

    def draw(self, scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One id per row of ``scores`` [samples, tokens] (log-probabilities up to a
        constant per row)."""
        if self.greedy:
            return scores.argmax(-1)
        scores = scores.astype(np.float64) / self.temperature
        if self.top_k is not None and self.top_k < scores.shape[-1]:
            kth = np.partition(scores, -self.top_k, axis=-1)[:, -self.top_k, None]
            scores = np.where(scores >= kth, scores, -np.inf)
        scores = scores - scores.max(-1, keepdims=True)
        probabilities = np.exp(scores)
        probabilities /= probabilities.sum(-1, keepdims=True)
        cumulative = probabilities.cumsum(-1)
        draws = rng.random((len(scores), 1))
        return np.minimum((cumulative < draws).sum(-1), scores.shape[-1] - 1)


class LanguageModel:
    """A spec that can generate: what it reads, what it scores, and its step function."""

    def __init__(self, spec: Spec, params: dict, backend: str = "numpy"):
        self.spec = spec
        self.params = check_params(spec, params)
        self.backend = backend
        self.input, self.output = _language_model_io(spec)
        array = spec.inputs[self.input]
        self.tokens = array.features  # the classes of ids, or the one-hot width
        self.ids = array.classes is not None
        self.lengths = array.lengths
        self.states = state_inputs(spec)  # '<layer>.<state>0' -> units
        self.probabilities = _gives_probabilities(spec, self.output)

    def feed(self, ids: np.ndarray, states: dict) -> tuple[np.ndarray, dict]:
        """Run ``ids`` [samples, steps] from ``states``: (the scores after the last step
        [samples, tokens], the states after it)."""
        samples, steps = ids.shape
        inputs = {self.input: ids if self.ids else
                  np.eye(self.tokens, dtype=self.spec.dtype)[ids]}
        if self.lengths:
            inputs[f"{self.input}.lengths"] = np.full(samples, steps, dtype=np.int64)
        inputs.update(states)
        artifact = compile_spec(self.spec, self.backend, steps, state_io=True)
        outputs = artifact.run(self.params, inputs)
        scores = np.asarray(outputs[self.output])[:, -1]
        if self.probabilities:  # a softmax layer's output: back to log-probabilities
            with np.errstate(divide="ignore"):
                scores = np.log(scores)
        after = {name: np.asarray(outputs[name[:-1]]) for name in self.states}
        return scores, after

    def zero_states(self, samples: int) -> dict:
        return {name: np.zeros((samples, units), self.spec.dtype)
                for name, units in self.states.items()}


def generate_ids(model: LanguageModel, prompt: list[int], length: int, *,
                 sampling: Sampling | None = None, samples: int = 1, seed: int = 0,
                 stop: int | None = None) -> list[list[int]]:
    """``samples`` continuations of ``prompt`` of up to ``length`` ids each (a continuation
    ends after ``stop`` where it is drawn)."""
    sampling = sampling or Sampling()
    if not prompt:
        raise RnncError("generation starts from a prompt of at least one token")
    if any(not 0 <= i < model.tokens for i in prompt):
        raise RnncError(f"the prompt's ids must be from 0 to {model.tokens - 1}")
    rng = np.random.default_rng(seed)
    ids = np.tile(np.asarray(prompt, dtype=np.int64), (samples, 1))
    scores, states = model.feed(ids, model.zero_states(samples))
    made = np.zeros((samples, 0), dtype=np.int64)
    running = np.ones(samples, dtype=bool)
    for _ in range(length):
        chosen = sampling.draw(scores, rng)
        made = np.concatenate([made, chosen[:, None]], axis=1)
        if stop is not None:
            running &= made[:, -1] != stop
            if not running.any():
                break
        scores, states = model.feed(chosen[:, None], states)
    result = []
    for row in made:
        ended = np.flatnonzero(row == stop) if stop is not None else []
        result.append(row[:ended[0] + 1].tolist() if len(ended) else row.tolist())
    return result


def generate(spec: Spec, params: dict, prompt, length: int = 100, *,
             temperature: float = 1.0, top_k: int | None = None, greedy: bool = False,
             samples: int = 1, seed: int = 0, stop=None, backend: str = "numpy",
             vocabulary: list[str] | None = None):
    """Continue ``prompt`` with up to ``length`` tokens: text in, text out (with the
    vocabulary given, or carried by ``params`` as ``vocabulary.<input>``), or ids in, ids
    out; ``stop`` likewise. Returns one continuation, or a list of ``samples``."""
    from .vocabulary import split_vocabularies

    params, carried = split_vocabularies(spec, params)
    model = LanguageModel(spec, params, backend)
    text = isinstance(prompt, str)
    if text:
        tokens = vocabulary if vocabulary is not None else carried.get(model.input)
        if tokens is None:
            raise RnncError("a text prompt needs a vocabulary, and the parameters carry "
                            f"none (vocabulary.{model.input}): give the prompt as ids")
        prompt = encode(prompt, tokens)
        if stop is not None:
            stop_ids = encode(stop, tokens)
            if len(stop_ids) != 1:
                raise RnncError(f"the stop token {stop!r} is not one token of the vocabulary")
            stop = stop_ids[0]
    made = generate_ids(model, list(prompt), length, samples=samples, seed=seed, stop=stop,
                        sampling=Sampling(temperature, top_k, greedy))
    if text:
        made = [decode(row, tokens) for row in made]
    return made[0] if samples == 1 else made


def _language_model_io(spec: Spec) -> tuple[str, str]:
    """(the input fed back, the output scored), or an error saying what a language model
    needs."""
    def refuse(why: str):
        raise RnncError(f"spec {spec.name} cannot generate: {why}", spec.source.loc(()))

    if len(spec.inputs) != 1:
        refuse(f"a language model reads one input (this one reads {len(spec.inputs)})")
    (name, array), = spec.inputs.items()
    if not array.sequence or array.steps is not None:
        refuse(f"its input '{name}' must be a sequence that follows T")
    output = spec.loss.output if spec.loss is not None else spec.outputs[-1]
    layer = spec.layer(output)
    if not layer.output.sequence or layer.output.features != array.features:
        refuse(f"its output '{output}' must give one score per token at every step "
               f"({array.features}, as input '{name}' has)")
    for each in spec.layers:
        if each.type == "rnn" and each.direction != "forward":
            refuse(f"layer {each.name} runs {each.direction}: generation runs forward only")
        if each.type == "rnn" and each.feedback:
            refuse(f"layer {each.name} has `feedback`: it generates inside its own loop "
                   "(run it with `rnnc run`)")
        if each.type == "rnn" and each.initial_state:
            refuse(f"layer {each.name} starts from `initial_state`: a language model starts "
                   "from zeros")
        if each.type == "repeat" or (each.type == "rnn" and each.steps is not None):
            refuse(f"layer {each.name} has its own length: generation feeds one step at a "
                   "time")
    return name, output


def _gives_probabilities(spec: Spec, output: str) -> bool:
    layer = spec.layer(output)
    return layer.type == "dense" and layer.activation == "softmax"
