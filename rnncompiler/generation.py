"""Autoregressive generation: each sampled token is fed back as the next step's input
(``rnnc generate``, ``rncompiler.generate``).

A spec generates when one of its inputs, a sequence of class ids (or of one-hot
numbers), is what its scored output is computed from step by step — a language model's
text, a decoder's previous word — and the output gives one score per token at every step:
the loss's output (logits, or a softmax layer's probabilities), else the last output.

The spec is split in two (``GenerationPlan``): the *context* (the layers that do not
read the fed input: an encoder, with its own inputs, the source sentence) runs once; the
*step* part (the layers that read the fed input, through embeddings, recurrent and dense
layers) runs one step at a time with its states as inputs and outputs (``--state-io``),
started from the context's final states where the spec says so (``initial_state:
{h: encoder.h}``). So the prompt is fed in one call, then one call per token, and no
prefix is ever computed twice.
"""

from __future__ import annotations

import copy
import dataclasses
import weakref
from dataclasses import dataclass

import numpy as np

from .api import compile_spec
from .arrays import check_inputs, check_params
from .build.unroll import state_inputs
from .errors import RnncError
from .frontend.spec import Spec
from .vocabulary import decode, encode, split_vocabularies


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


@dataclass
class GenerationPlan:
    """A spec split for generation: the fed input, the scored output, the context spec
    (None: nothing to compute first) and the step spec, and where each step layer's
    states start (``<layer>.<state>0`` -> a context final state or input; else zeros)."""

    fed: str
    output: str
    context_inputs: list  # the inputs given once, before the first token
    context: Spec | None  # the layers computed from them (None: none)
    step: Spec
    starts: dict


_plans: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # spec -> {fed: plan}


def plan_generation(spec: Spec, fed: str | None = None) -> GenerationPlan:
    """Split ``spec`` for generation (kept with the spec), or say why it cannot generate."""
    kept = _plans.setdefault(spec, {})
    if fed not in kept:
        kept[fed] = _Planner(spec).plan(fed)
    return kept[fed]


class Generator:
    """A spec ready to generate: its plan, parameters and backend."""

    def __init__(self, spec: Spec, params: dict, backend: str = "numpy",
                 fed: str | None = None):
        self.plan = plan_generation(spec, fed)
        self.spec = spec
        self.params = check_params(spec, params)
        self.backend = backend
        array = spec.inputs[self.plan.fed]
        self.tokens = array.features  # the classes of ids, or the one-hot width
        self.ids = array.classes is not None
        layer = spec.layer(self.plan.output)
        self.probabilities = layer.type == "dense" and layer.activation == "softmax"

    def start(self, samples: int, context: dict | None = None) -> dict:
        """The step part's states before the first token: the context's final states
        (computed once from the ``context`` arrays) where the spec starts from them."""
        context = dict(context or {})
        wanted = self.plan.context_inputs
        missing = [name for name in wanted if name not in context]
        unknown = [name for name in context if name not in wanted]
        if missing or unknown:
            raise RnncError(f"generation from spec {self.spec.name} takes the context "
                            f"input(s) {', '.join(wanted) or '(none)'}, given once before "
                            f"the first token; got {', '.join(context) or 'none'}")
        values = dict(context)
        if self.plan.context is not None:
            arrays, steps = check_inputs(self.plan.context, context)
            params = {k: self.params[k] for k in _param_keys(self.plan.context)}
            artifact = compile_spec(self.plan.context, self.backend, steps)
            values = {**arrays, **artifact.run(params, arrays)}
        if values:
            for name, value in values.items():
                if len(value) != samples:
                    raise RnncError(f"context array '{name}' has {len(value)} examples; "
                                    f"generating {samples} needs as many")
        states = {}
        for name, units in state_inputs(self.plan.step).items():
            source = self.plan.starts.get(name)
            states[name] = np.asarray(values[source], self.spec.dtype) if source else \
                np.zeros((samples, units), self.spec.dtype)
        return states

    def feed(self, ids: np.ndarray, states: dict) -> tuple[np.ndarray, dict]:
        """Run ``ids`` [samples, steps] from ``states``: (the scores after the last step
        [samples, tokens], the states after it)."""
        samples, steps = ids.shape
        step = self.plan.step
        inputs = {self.plan.fed: ids if self.ids else
                  np.eye(self.tokens, dtype=self.spec.dtype)[ids]}
        if step.inputs[self.plan.fed].lengths:
            inputs[f"{self.plan.fed}.lengths"] = np.full(samples, steps, dtype=np.int64)
        inputs.update(states)
        artifact = compile_spec(step, self.backend, steps, state_io=True)
        params = {k: self.params[k] for k in _param_keys(step)}
        outputs = artifact.run(params, inputs)
        scores = np.asarray(outputs[self.plan.output])[:, -1]
        if self.probabilities:  # a softmax layer's output: back to log-probabilities
            with np.errstate(divide="ignore"):
                scores = np.log(scores)
        after = {name: np.asarray(outputs[name[:-1]]) for name in states}
        return scores, after


def generate_ids(generator: Generator, prompt: list[int], length: int, *,
                 sampling: Sampling | None = None, samples: int = 1, seed: int = 0,
                 stop: int | None = None, context: dict | None = None) -> list[list[int]]:
    """``samples`` continuations of ``prompt`` of up to ``length`` ids each (a continuation
    ends after ``stop`` where it is drawn); ``context``: the arrays of the context inputs
    (a source sentence per sample)."""
    sampling = sampling or Sampling()
    if not prompt:
        raise RnncError("generation starts from a prompt of at least one token")
    if any(not 0 <= i < generator.tokens for i in prompt):
        raise RnncError(f"the prompt's ids must be from 0 to {generator.tokens - 1}")
    rng = np.random.default_rng(seed)
    ids = np.tile(np.asarray(prompt, dtype=np.int64), (samples, 1))
    scores, states = generator.feed(ids, generator.start(samples, context))
    made = np.zeros((samples, 0), dtype=np.int64)
    running = np.ones(samples, dtype=bool)
    for _ in range(length):
        chosen = sampling.draw(scores, rng)
        made = np.concatenate([made, chosen[:, None]], axis=1)
        if stop is not None:
            running &= made[:, -1] != stop
            if not running.any():
                break
        scores, states = generator.feed(chosen[:, None], states)
    result = []
    for row in made:
        ended = np.flatnonzero(row == stop) if stop is not None else []
        result.append(row[:ended[0] + 1].tolist() if len(ended) else row.tolist())
    return result


def generate(spec: Spec, params: dict, prompt, length: int = 100, *,
             temperature: float = 1.0, top_k: int | None = None, greedy: bool = False,
             samples: int | None = None, seed: int = 0, stop=None, backend: str = "numpy",
             context: dict | None = None, vocabulary: list[str] | None = None):
    """Continue ``prompt`` with up to ``length`` tokens: text in, text out (with the
    vocabulary given, or carried by ``params`` as ``vocabulary.<input>``), or ids in, ids
    out; ``stop`` likewise. ``context``: the arrays of the inputs computed once before the
    first token (an encoder's source), one example per sample. Returns one continuation,
    or a list of ``samples`` (default: one, or one per context example)."""
    params, carried = split_vocabularies(spec, params)
    generator = Generator(spec, params, backend)
    if samples is None:
        samples = len(next(iter(context.values()))) if context else 1
    text = isinstance(prompt, str)
    if text:
        tokens = vocabulary if vocabulary is not None else carried.get(generator.plan.fed)
        if tokens is None:
            raise RnncError("a text prompt needs a vocabulary, and the parameters carry "
                            f"none (vocabulary.{generator.plan.fed}): give the prompt as ids")
        prompt = encode(prompt, tokens)
        if stop is not None:
            stop_ids = encode(stop, tokens)
            if len(stop_ids) != 1:
                raise RnncError(f"the stop token {stop!r} is not one token of the vocabulary")
            stop = stop_ids[0]
    made = generate_ids(generator, list(prompt), length, samples=samples, seed=seed,
                        stop=stop, context=context,
                        sampling=Sampling(temperature, top_k, greedy))
    if text:
        made = [decode(row, tokens) for row in made]
    return made[0] if samples == 1 and not context else made


def _param_keys(spec: Spec) -> list[str]:
    from .frontend.params import param_infos

    return [info.key for info in param_infos(spec)]


class _Planner:
    def __init__(self, spec: Spec):
        self.spec = spec

    def refuse(self, why: str):
        raise RnncError(f"spec {self.spec.name} cannot generate: {why}",
                        self.spec.source.loc(()))

    def plan(self, fed: str | None) -> GenerationPlan:
        spec = self.spec
        output = spec.loss.output if spec.loss is not None else spec.outputs[-1]
        candidates = [name for name, array in spec.inputs.items()
                      if array.sequence and output in self.reached_from(name)]
        if fed is None:
            if len(candidates) != 1:
                which = "none" if not candidates else ", ".join(candidates)
                self.refuse(f"it needs one sequence input that its output '{output}' is "
                            f"computed from step by step (found {which})")
            fed = candidates[0]
        elif fed not in candidates:
            self.refuse(f"its output '{output}' is not computed step by step from input "
                        f"'{fed}'")
        steps = self.reached_from(fed)
        array = spec.inputs[fed]
        layer = spec.layer(output)
        if not layer.output.sequence or layer.output.features != array.features:
            self.refuse(f"its output '{output}' must give one score per token at every "
                        f"step ({array.features}, as input '{fed}' has)")
        for each in spec.layers:
            if each.name in steps:
                self.check_step_layer(each)
        starts = self.starts(steps)
        inputs, context = self.context(steps, starts)
        step = self.step_spec(fed, output, steps)
        return GenerationPlan(fed, output, inputs, context, step, starts)

    def reached_from(self, name: str) -> set[str]:
        """The layers computed from ``name`` through their ``input`` (step by step)."""
        reached = {name}
        for layer in self.spec.layers:
            if layer.input in reached:
                reached.add(layer.name)
        return reached - {name}

    def check_step_layer(self, layer) -> None:
        if layer.type == "rnn":
            if layer.direction != "forward":
                self.refuse(f"layer {layer.name} runs {layer.direction}: generation runs "
                            "forward only")
            if layer.feedback:
                self.refuse(f"layer {layer.name} has `feedback`: it generates inside its own "
                            "loop (run it with `rnnc run`)")
        if layer.type == "repeat" or (layer.type == "rnn" and layer.steps is not None):
            self.refuse(f"layer {layer.name} has its own length: generation feeds one step "
                        "at a time")

    def starts(self, steps: set) -> dict:
        """``<layer>.<state>0`` -> where the step layer's state starts (a context final
        state or a context input), for the states the spec does not start from zeros."""
        starts = {}
        for layer in self.spec.layers:
            if layer.name in steps and layer.type == "rnn":
                for key, source in layer.initial_state.items():
                    if source.split(".")[0] in steps:
                        self.refuse(f"layer {layer.name} starts from '{source}', which the "
                                    "fed input computes")
                    starts[f"{layer.name}.{key}0"] = source
        return starts

    def context(self, steps: set, starts: dict) -> tuple[list, Spec | None]:
        """The inputs given once before the first token, and the spec of the layers that
        do not read the fed input (an encoder) computed from them (None: no such layer)."""
        spec = self.spec
        layers = [layer for layer in spec.layers if layer.name not in steps]
        needed = {source.split(".")[0] for source in starts.values()}
        for layer in layers:
            needed |= {layer.input} | {s.split(".")[0] for s in layer.initial_state.values()}
        inputs = {name: array for name, array in spec.inputs.items() if name in needed}
        if not layers:
            return list(inputs), None
        return list(inputs), _derived(spec, f"{spec.name}_context", inputs, layers,
                                      [layers[-1].name])

    def step_spec(self, fed: str, output: str, steps: set) -> Spec:
        """The layers that read the fed input, every state started from an input, the fed
        input following T (one token, or the prompt)."""
        spec = self.spec
        layers = [dataclasses.replace(layer, initial_state={}) for layer in spec.layers
                  if layer.name in steps]
        for layer in layers:
            if layer.output.sequence:
                layer.output = dataclasses.replace(layer.output, steps=None)
        inputs = {fed: dataclasses.replace(spec.inputs[fed], steps=None)}
        return _derived(spec, f"{spec.name}_step", inputs, layers, [output])


def _derived(spec: Spec, name: str, inputs: dict, layers: list, outputs: list) -> Spec:
    """A spec of some of ``spec``'s inputs and layers (the same cells and dtype), with no
    loss and no targets."""
    derived = copy.copy(spec)
    derived.name = name
    derived.inputs, derived.targets = inputs, {}
    derived.layers, derived.outputs = layers, outputs or [layers[-1].name]
    derived.loss = None
    return derived
