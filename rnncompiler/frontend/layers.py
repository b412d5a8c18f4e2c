"""The layers of a spec (SPEC.md §2), read and typed in order.

Typing gives every layer the kind (sequence or vector), features and length of what it
produces, from its input; this is where a layer fed a vector where it needs a sequence is
caught, with the fix in the message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import Broken, did_you_mean, one_of
from .checks import (
    check_choice,
    check_identifier,
    check_int,
    check_mapping,
    describe,
    is_identifier,
)
from .dropout import RNN_KEYS, check_rate, misplaced_keys
from .plain_layers import ACTIVATIONS, PlainLayers
from .value_types import ValueType
from .yaml_source import Source, format_path


@dataclass
class LayerSpec:
    """One entry of ``layers``; fields not used by its type keep their defaults."""

    name: str
    type: str  # rnn | dense | repeat | embedding | dropout
    path: tuple
    input: str | None = None
    units: int | None = None
    cell: str | None = None
    returns: str = "last"  # last | sequence
    direction: str = "forward"  # forward | backward | bidirectional
    initial_state: dict = field(default_factory=dict)  # state key -> source name
    steps: int | None = None
    feedback: str | None = None  # a later dense layer whose output is fed back
    feedback_units: int = 0
    activation: str = "linear"
    classes: int | None = None  # embedding: the number of ids (rows of its table)
    padding_id: int | None = None  # embedding: the id whose row stays zero
    output: ValueType | None = None  # filled in by typing
    rate: float | None = None  # a dropout layer's fraction dropped
    dropout: float = 0.0  # an rnn layer's dropout of x[t] (frontend/dropout.py)
    recurrent_dropout: float = 0.0  # an rnn layer's dropout of h[t-1] in products

    @property
    def directions(self) -> tuple[str, ...]:
        if self.direction == "bidirectional":
            return ("fwd", "bwd")
        return ("",)


LAYER_KEYS = {
    "rnn": ("name", "type", "cell", "units", "input", "return", "direction", "initial_state",
            "steps", "feedback", *RNN_KEYS),
    "dense": ("name", "type", "units", "input", "activation"),
    "repeat": ("name", "type", "input", "steps"),
    "embedding": ("name", "type", "units", "input", "padding_id"),
    "dropout": ("name", "type", "input", "rate"),
}
ALL_KEYS = LAYER_KEYS["rnn"] + ("activation", "padding_id", "rate")
REQUIRED = {"rnn": ("cell", "units"), "dense": ("units", "input"), "repeat": ("input", "steps"),
            "embedding": ("units", "input"), "dropout": ("input", "rate")}
RETURNS = ("last", "sequence")
DIRECTIONS = ("forward", "backward", "bidirectional")


def _choice(choices):
    return lambda source, path, value: check_choice(source, path, value, choices)


# checks of one key's value on its own, whatever else the layer has
VALUE_CHECKS = {"units": check_int, "steps": check_int, "return": _choice(RETURNS),
                "direction": _choice(DIRECTIONS), "activation": _choice(ACTIVATIONS)}
VALUE_CHECKS.update(dict.fromkeys(("rate", *RNN_KEYS), check_rate))


def read_layers(source: Source, value, inputs: dict, cells: dict, claim) -> list:
    """Read and type the ``layers`` list, in order. A layer with an error is left out and
    its name is broken: what uses it says nothing more."""
    if not isinstance(value, list) or not value:
        source.broken_sections.add("layers")
        message = ("a spec needs at least one layer; the list is empty" if value == [] else
                   f"expected a list of layers, got {describe(value)}")
        source.keep(source.error(("layers",), message))
        return []
    if not all(isinstance(entry, dict) and is_identifier(entry.get("name")) for entry in value):
        source.broken_sections.add("layers")
    reader = _LayerReader(source, inputs, cells)
    reader.all_names = [entry.get("name") for entry in value if isinstance(entry, dict)]
    reader.entries = value
    for i, entry in enumerate(value):
        layer = source.attempt_part(_read_layer, source, reader, i, entry, claim)
        if layer is not None:
            reader.layers.append(layer)
        elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
            source.broken.add(entry["name"])  # what uses it says nothing more
    return reader.layers


def _read_layer(source: Source, reader, i: int, entry, claim) -> LayerSpec:
    """One layer; its name, its type and each of its keys are checked on their own."""
    path = ("layers", i)
    if not isinstance(entry, dict):
        raise source.error(path, f"expected a layer mapping, got {describe(entry)}")
    kind = entry.get("type")
    kind = kind if isinstance(kind, str) and kind in LAYER_KEYS else None
    misplaced = misplaced_keys(source, path, kind, entry)  # reported with their fix
    required = [k for k in REQUIRED.get(kind, ()) if not (k == "rate" and "dropout" in misplaced)]
    check_mapping(source, path, entry, (LAYER_KEYS[kind] if kind else ALL_KEYS) + misplaced,
                  required=("name", "type", *required))
    name = entry.get("name")
    if "name" in entry and source.attempt(check_identifier, source, path + ("name",), name,
                                          "layer name") is not None:
        source.attempt(claim, name, path + ("name",))
    if "type" in entry:
        source.attempt(reader.check_type, path + ("type",), entry["type"])
    layer = LayerSpec(name=name if isinstance(name, str) else format_path(path), type=kind,
                      path=path)
    if kind is None:  # the keys that mean the same in every layer are still checked
        for key, value in entry.items():
            if key in VALUE_CHECKS:
                source.attempt(VALUE_CHECKS[key], source, path + (key,), value)
        raise Broken()
    getattr(reader, f"read_{kind}")(layer, entry)
    return layer


class _LayerReader(PlainLayers):
    def __init__(self, source: Source, inputs: dict, cells: dict):
        self.source = source
        self.inputs = inputs
        self.cells = cells
        self.layers: list[LayerSpec] = []

    def error(self, layer: LayerSpec, key: str, message: str):
        return self.source.error(layer.path + (key,), f"layer {layer.name}: {message}")

    def check_type(self, path, kind) -> str:
        """One of LAYER_KEYS; `type: lstm` gets the fix."""
        if isinstance(kind, str) and kind not in LAYER_KEYS and kind in self.cells:
            raise self.source.error(path, f"expected {one_of(LAYER_KEYS)}, got '{kind}', "
                                          f"which is a cell: write `type: rnn, cell: {kind}`")
        return check_choice(self.source, path, kind, tuple(LAYER_KEYS))

    def value_type(self, layer: LayerSpec, name) -> ValueType:
        """The type of the input or earlier layer called ``name``."""
        if isinstance(name, str) and name in self.source.broken:
            raise Broken()
        if isinstance(name, str) and name in self.inputs:
            spec = self.inputs[name]
            given = ValueType(spec.sequence, spec.features, spec.steps, spec.classes is not None)
            if given.ids and layer.type != "embedding":
                raise self.error(layer, "input", f"input '{name}' holds class ids (`classes: "
                                                 f"{spec.features}`); embed them first: add a "
                                                 f"layer `{{type: embedding, input: {name}, "
                                                 "units: N}` and read that")
            return given
        for earlier in self.layers:
            if earlier.name == name:
                return earlier.output
        known = list(self.inputs) + [earlier.name for earlier in self.layers]
        if isinstance(name, str) and (name == layer.name or name in self.all_names):
            where = "is this layer itself" if name == layer.name else "comes later"
            raise self.error(layer, "input", f"layer '{name}' {where}; a layer may use the "
                                             "spec's inputs and earlier layers only")
        if not isinstance(name, str):
            raise self.error(layer, "input", f"expected the name of an input or an earlier "
                                             f"layer, got {describe(name)}")
        if self.source.broken_sections & {"inputs", "layers"}:
            raise Broken()  # it may be an input or a layer whose name could not be read
        raise self.error(layer, "input", f"unknown input '{name}'{did_you_mean(name, known)}; "
                                         "a layer may use the spec's inputs and earlier layers")

    def read_rnn(self, layer: LayerSpec, entry: dict) -> None:
        """Each key on its own; what needs another key (the initial state needs the cell,
        the output the units) only once that one is right."""
        src, path = self.source, layer.path
        if "units" in entry:
            layer.units = src.attempt(check_int, src, path + ("units",), entry["units"])
        if "cell" in entry:
            layer.cell = src.attempt(self.read_cell, layer, entry["cell"])
        layer.returns = src.attempt(check_choice, src, path + ("return",),
                                    entry.get("return", "last"), RETURNS)
        layer.direction = src.attempt(check_choice, src, path + ("direction",),
                                      entry.get("direction", "forward"), DIRECTIONS)
        if "feedback" in entry:
            src.attempt(self.read_feedback, layer, entry)
        rates = [src.attempt(check_rate, src, path + (key,), entry.get(key, 0.0))
                 for key in RNN_KEYS]
        layer.dropout, layer.recurrent_dropout = rates
        steps = src.attempt(self.read_rnn_input, layer, entry)
        if None in (layer.units, layer.cell, layer.returns, layer.direction, *rates):
            raise Broken()
        layer.initial_state = self.read_initial_state(layer, entry.get("initial_state", {}))
        width = layer.units * len(layer.directions)
        layer.output = ValueType(layer.returns == "sequence", width, steps)

    def read_cell(self, layer: LayerSpec, cell) -> str:
        if isinstance(cell, str) and cell in self.cells and self.cells[cell] is None:
            raise Broken()  # a custom cell that already failed
        if isinstance(cell, str) and cell not in self.cells and \
                "cells" in self.source.broken_sections:
            raise Broken()  # it may be one of the cells that could not be read
        if not isinstance(cell, str) or cell not in self.cells:
            hint = did_you_mean(cell, self.cells) if isinstance(cell, str) else ""
            raise self.error(layer, "cell", f"unknown cell {describe(cell)}{hint}; "
                                            f"known cells: {', '.join(self.cells)}")
        return cell

    def read_rnn_input(self, layer: LayerSpec, entry: dict):
        """The input of an rnn layer; returns its length."""
        src, path = self.source, layer.path
        if "input" not in entry and "feedback" not in entry:
            raise src.error(path, f"layer {layer.name}: missing required key 'input'")
        layer.input = entry.get("input")
        if layer.input is None and "feedback" in entry:  # fed only its own outputs
            if layer.feedback is None:
                raise Broken()  # the feedback's own error says what is wrong
            if "steps" not in entry:
                raise src.error(path, f"layer {layer.name}: with `feedback` and no `input`, "
                                      "give `steps: N` (how many steps to generate)")
            return check_int(src, path + ("steps",), entry["steps"])
        given = self.value_type(layer, layer.input)
        return self.read_steps(layer, entry, given)

    def read_feedback(self, layer: LayerSpec, entry: dict) -> None:
        """`feedback: D`: D is a later dense layer on this layer's sequence; its output at
        step t-1 is (part of) this layer's input at step t."""
        name = entry["feedback"]
        if not isinstance(entry.get("name"), str):
            raise Broken()  # which layer it feeds back to is not known
        later = {e["name"]: e for e in self.entries[layer.path[1] + 1:]
                 if isinstance(e, dict) and isinstance(e.get("name"), str)}
        if not isinstance(name, str) or name not in later:
            if isinstance(name, str) and "layers" in self.source.broken_sections:
                raise Broken()  # it may be a layer whose name could not be read
            known = list(later)
            hint = did_you_mean(name, known) if isinstance(name, str) and known else ""
            raise self.error(layer, "feedback", f"unknown layer {describe(name)}{hint}; "
                                                "`feedback` names a later dense layer applied "
                                                f"to {layer.name} at every step")
        dense = later[name]
        if dense.get("type") != "dense" or dense.get("input") != layer.name:
            raise self.error(layer, "feedback", f"layer '{name}' must be a dense layer with "
                                                f"`input: {layer.name}`: its output at step "
                                                "t-1 is fed back at step t")
        if None in (layer.returns, layer.direction):
            raise Broken()  # their own errors say what is wrong
        if layer.returns != "sequence":
            raise self.error(layer, "feedback", "`feedback` feeds back the output of every "
                                                "step: set `return: sequence`")
        if layer.direction != "forward":
            raise self.error(layer, "feedback", "`feedback` generates one step after the "
                                                "other: it needs `direction: forward`")
        units = dense.get("units")
        if not isinstance(units, int) or isinstance(units, bool) or units < 1:
            raise Broken()  # the dense layer's own error says what is wrong
        layer.feedback = name
        layer.feedback_units = units

    def read_steps(self, layer: LayerSpec, entry: dict, given: ValueType):
        """The length of an rnn layer: its sequence input's, or `steps` for a vector input."""
        if given.sequence:
            if "steps" in entry:
                raise self.error(layer, "steps", "`steps` is only for a vector input "
                                                 f"(one-to-many); input '{layer.input}' is "
                                                 f"{given.describe()}")
            return given.steps
        if "steps" in entry:
            return check_int(self.source, layer.path + ("steps",), entry["steps"])
        producer = next((p for p in self.layers if p.name == layer.input), None)
        if producer is not None and producer.type == "rnn":
            raise self.error(layer, "input", f"input '{layer.input}' is a vector (layer "
                                             f"{producer.name} returns only its last step), but "
                                             "an rnn layer needs a sequence: set `return: "
                                             f"sequence` on layer {producer.name}")
        raise self.error(layer, "input", f"input '{layer.input}' is {given.describe()}, but an "
                                         "rnn layer needs a sequence: give `steps: N` to feed the "
                                         "vector at every step, or feed a sequence")

    def read_initial_state(self, layer: LayerSpec, value) -> dict:
        """Each key and each source on its own."""
        src, path = self.source, layer.path + ("initial_state",)
        states = self.cells[layer.cell].states
        if layer.direction == "bidirectional":
            keys = [f"{d}.{s}" for d in ("fwd", "bwd") for s in states]
        else:
            keys = list(states)
        check_mapping(src, path, value, keys)
        for key, name in value.items():
            src.attempt(self.check_state_source, layer, path + (key,), name)
        return dict(value)

    def check_state_source(self, layer: LayerSpec, path, name) -> None:
        """An initial state is a vector input or `<layer>.<state>` of an earlier rnn layer."""
        src = self.source
        if isinstance(name, str) and name in self.inputs:
            spec = self.inputs[name]
            if spec.sequence:
                raise src.error(path, f"input '{name}' is a sequence; an initial state is a "
                                      "vector input (`sequence: false`)")
            if spec.classes is not None:
                raise src.error(path, f"input '{name}' holds class ids; an initial state is a "
                                      "vector of numbers (`features: N`)")
            if spec.features != layer.units:
                raise src.error(path, f"input '{name}' has {spec.features} features but layer "
                                      f"{layer.name} has {layer.units} units")
            return
        if isinstance(name, str) and name.split(".")[0] in self.source.broken:
            raise Broken()
        finals = {f"{p.name}.{d + '.' if d else ''}{s}": p for p in self.layers if p.type == "rnn"
                  for d in p.directions for s in self.cells[p.cell].states}
        if not isinstance(name, str) or name not in finals:
            if isinstance(name, str) and \
                    ("layers" if "." in name else "inputs") in self.source.broken_sections:
                raise Broken()  # it may name an entry whose name could not be read
            choices = [n for n, s in self.inputs.items() if not s.sequence] + list(finals)
            raise src.error(path, f"unknown state source {describe(name)}"
                                  f"{did_you_mean(name, choices) if isinstance(name, str) else ''}"
                                  "; use a vector input or '<layer>.<state>' of an earlier "
                                  "rnn layer")
        if finals[name].units != layer.units:
            raise src.error(path, f"'{name}' has {finals[name].units} features but layer "
                                  f"{layer.name} has {layer.units} units")
