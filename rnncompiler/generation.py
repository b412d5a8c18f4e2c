"""Autoregressive generation: each drawn token is fed back as the next step's input
(``rnnc generate``, ``rncompiler.generate``). ``generation_plan.py`` splits the spec into
a context, computed once, and a step part; here the step part runs one call per token
with its states carried from call to call, so no prefix is ever computed twice: a prompt
of tokens goes in one call, then each drawn token in one call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .api import compile_spec
from .arrays import check_inputs, check_params
from .build.unroll import state_inputs
from .errors import RnncError
from .frontend.spec import Spec
from .generation_plan import param_keys, plan_generation
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


class Generator:
    """A spec ready to generate: its plan, parameters and backend."""

    def __init__(self, spec: Spec, params: dict, backend: str = "numpy",
                 fed: str | None = None):
        self.plan = plan_generation(spec, fed)
        self.spec = spec
        self.params = check_params(spec, params)
        self.backend = backend
        layer = spec.layer(self.plan.output)
        if self.plan.feedback:  # the dense layer's output, fed back as one-hot tokens
            self.tokens, self.ids = layer.units, False
        else:  # the classes of ids, or the one-hot width
            array = spec.inputs[self.plan.fed]
            self.tokens, self.ids = array.features, array.classes is not None
        self.probabilities = layer.type == "dense" and layer.activation == "softmax"

    def start(self, samples: int, context: dict | None = None) -> dict:
        """The step part's states before the first token: the context's final states
        (computed once from the ``context`` arrays) where the spec starts from them, and
        the context inputs that the step part reads at every step."""
        context = dict(context or {})
        wanted = self.plan.context_inputs
        missing = [name for name in wanted if name not in context]
        unknown = [name for name in context if name not in wanted]
        if missing or unknown:
            raise RnncError(f"generation from spec {self.spec.name} takes the context "
                            f"input(s) {', '.join(wanted) or '(none)'}, given once before "
                            f"the first token; got {', '.join(context) or 'none'}")
        if context:
            values = check_inputs(_only(self.spec, wanted), context)[0]
        else:
            values = {}
        if self.plan.context is not None:
            arrays = {k: v for k, v in values.items() if k in self.plan.context.inputs}
            arrays, steps = check_inputs(self.plan.context, arrays)
            params = {k: self.params[k] for k in param_keys(self.plan.context)}
            values.update(compile_spec(self.plan.context, self.backend, steps).run(
                params, arrays))
        for name, value in values.items():
            if len(value) != samples:
                raise RnncError(f"context array '{name}' has {len(value)} examples; "
                                f"generating {samples} needs as many")
        states = {name: values[name] for name in self.plan.per_call}
        for name, units in state_inputs(self.plan.step).items():
            source = self.plan.starts.get(name)
            states[name] = np.asarray(values[source], self.spec.dtype) if source else \
                np.zeros((samples, units), self.spec.dtype)
        return states

    def feed(self, ids: np.ndarray | None, states: dict) -> tuple[np.ndarray, dict]:
        """Run ``ids`` [samples, steps] from ``states`` (a feedback loop: one step, the
        last id fed back; None: the start's zeros): (the scores after the last step
        [samples, tokens], the states after it)."""
        step, fed = self.plan.step, self.plan.fed
        inputs = dict(states)
        if self.plan.feedback:
            steps = 1
            if ids is not None:
                inputs[fed] = np.eye(self.tokens, dtype=self.spec.dtype)[ids[:, -1]]
        else:
            samples, steps = ids.shape
            inputs[fed] = ids if self.ids else np.eye(self.tokens, dtype=self.spec.dtype)[ids]
            if step.inputs[fed].lengths:
                inputs[f"{fed}.lengths"] = np.full(samples, steps, dtype=np.int64)
        artifact = compile_spec(step, self.backend, steps, state_io=True)
        params = {k: self.params[k] for k in param_keys(step)}
        outputs = artifact.run(params, inputs)
        scores = np.asarray(outputs[self.plan.output])[:, -1]
        if self.probabilities:  # a softmax layer's output: back to log-probabilities
            with np.errstate(divide="ignore"):
                scores = np.log(scores)
        after = {name: np.asarray(outputs[name[:-1]]) if name[:-1] in outputs else value
                 for name, value in states.items()}  # (inputs read at every step: as given)
        return scores, after


def _only(spec: Spec, names: list) -> Spec:
    """``spec`` with only the inputs ``names`` (to check the arrays given for them)."""
    import copy

    checked = copy.copy(spec)
    checked.inputs = {name: spec.inputs[name] for name in names}
    checked.targets, checked.loss = {}, None
    return checked


def generate_ids(generator: Generator, prompt: list[int], length: int, *,
                 sampling: Sampling | None = None, samples: int = 1, seed: int = 0,
                 stop: int | None = None, context: dict | None = None) -> list[list[int]]:
    """``samples`` continuations of ``prompt`` of up to ``length`` ids each (a continuation
    ends after ``stop`` where it is drawn); ``context``: the arrays of the context inputs
    (a source sentence per sample)."""
    sampling = sampling or Sampling()
    if not prompt and not generator.plan.feedback:
        raise RnncError("generation from a sequence of tokens starts from a prompt of at least "
                        "one token (--prompt TEXT, or --prompt-ids)")
    if any(not 0 <= i < generator.tokens for i in prompt):
        raise RnncError(f"the prompt's ids must be from 0 to {generator.tokens - 1}")
    rng = np.random.default_rng(seed)
    ids = np.tile(np.asarray(prompt, dtype=np.int64), (samples, 1))
    states = generator.start(samples, context)
    if generator.plan.feedback:  # the first step as trained (zeros fed back), then the
        scores, states = generator.feed(None, states)  # prompt's tokens, one a step
        for k in range(len(prompt)):
            scores, states = generator.feed(ids[:, k:k + 1], states)
    else:
        scores, states = generator.feed(ids, states)
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


