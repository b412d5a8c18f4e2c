"""How a spec generates (generation.py runs it): the spec split in two.

- the *context*: the layers that the generated tokens do not reach (an encoder) and the
  inputs they read, computed once before the first token;
- the *step* part: the layers the tokens reach, run one step at a time with their states
  as inputs and outputs (``--state-io``), started from the context's final states where
  the spec says so (``initial_state: {h: encoder.h}``).

The tokens reach the step part in one of two ways: as a sequence input of class ids (or
one-hot numbers) that the scored output is computed from step by step — a language
model's text, a teacher-forced decoder's previous word — or, in a ``feedback`` layer, as
the value it feeds back: then each drawn token, one-hot, is fed back in place of the
dense layer's output.
"""

from __future__ import annotations

import copy
import dataclasses
import weakref
from dataclasses import dataclass

from .errors import RnncError
from .frontend.params import param_infos
from .frontend.spec import Spec


@dataclass
class GenerationPlan:
    """A spec split for generation: the fed input, the scored output, the context spec
    (None: nothing to compute first) and the step spec, and where each step layer's
    states start (``<layer>.<state>0`` -> a context final state or input; else zeros)."""

    fed: str  # the input of the tokens; or, with ``feedback``, '<dense>.fed0'
    output: str
    context_inputs: list  # the inputs given once, before the first token
    context: Spec | None  # the layers computed from them (None: none)
    step: Spec
    starts: dict
    feedback: str | None = None  # the dense layer whose output a feedback layer feeds back
    per_call: tuple = ()  # context inputs the step part reads too (at every step)


_plans: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # spec -> {fed: plan}


def plan_generation(spec: Spec, fed: str | None = None) -> GenerationPlan:
    """Split ``spec`` for generation (kept with the spec), or say why it cannot generate."""
    kept = _plans.setdefault(spec, {})
    if fed not in kept:
        kept[fed] = _Planner(spec).plan(fed)
    return kept[fed]



def param_keys(spec: Spec) -> list[str]:
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
        looped = next((layer for layer in spec.layers if layer.type == "rnn"
                       and layer.feedback == output), None)
        if looped is not None and fed is None:
            return self.plan_feedback(looped, output)
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

    def plan_feedback(self, looped, output: str) -> GenerationPlan:
        """A ``feedback`` layer's loop run a step at a time, each drawn token fed back."""
        spec = self.spec
        steps = {looped.name} | self.reached_from(looped.name)
        given = looped.input
        if given is not None and (given not in spec.inputs or spec.inputs[given].sequence):
            self.refuse(f"layer {looped.name} reads '{given}' at every step: generation "
                        "feeds back tokens to a layer that reads nothing else, or a vector "
                        "input")
        for each in spec.layers:
            if each.name in steps and each.name != looped.name:
                self.check_step_layer(each)
        starts = self.starts(steps)
        inputs, context = self.context(steps, starts)
        per_call = (given,) if given is not None else ()
        inputs += [name for name in per_call if name not in inputs]
        step = self.step_spec(None, output, steps, one_step=True)
        return GenerationPlan(f"{output}.fed0", output, inputs, context, step, starts,
                              feedback=output, per_call=per_call)

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

    def step_spec(self, fed: str | None, output: str, steps: set,
                  one_step: bool = False) -> Spec:
        """The layers the tokens reach, every state started from an input; the fed input
        follows T (one token, or the prompt), or, ``one_step``, each layer runs one step
        (a feedback loop, fed one token a call) and reads the spec's input as it does."""
        spec = self.spec
        layers = []
        for layer in spec.layers:
            if layer.name not in steps:
                continue
            layer = dataclasses.replace(layer, initial_state={})
            if layer.output.sequence:
                length = 1 if one_step else None
                layer.output = dataclasses.replace(layer.output, steps=length)
                if one_step and layer.type == "rnn" and layer.steps is not None:
                    layer.steps = 1
            layers.append(layer)
        if fed is not None:
            inputs = {fed: dataclasses.replace(spec.inputs[fed], steps=None)}
        else:
            inputs = {name: spec.inputs[name] for name in spec.inputs
                      if any(layer.input == name for layer in layers)}
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
