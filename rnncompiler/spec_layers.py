"""Layers, outputs and the loss of a spec (SPEC.md §2, §6), read and typed in order.

Typing gives every layer the kind (sequence or vector), features and length of what it
produces, from its input; this is where a layer fed a vector where it needs a sequence is
caught, with the fix in the message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import Broken, did_you_mean
from .spec_checks import check_choice, check_identifier, check_int, check_mapping, describe
from .yaml_source import Source


@dataclass(frozen=True)
class ValueType:
    """What an input or a layer produces: kind, features, and length (None = T)."""

    sequence: bool
    features: int
    steps: int | None = None

    def describe(self) -> str:
        if not self.sequence:
            return f"a vector of {self.features}"
        length = "T" if self.steps is None else str(self.steps)
        return f"a sequence of {length} steps x {self.features}"


@dataclass
class LayerSpec:
    """One entry of ``layers``; fields not used by its type keep their defaults."""

    name: str
    type: str  # rnn | dense | repeat
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
    output: ValueType | None = None  # filled in by typing

    @property
    def directions(self) -> tuple[str, ...]:
        if self.direction == "bidirectional":
            return ("fwd", "bwd")
        return ("",)


@dataclass(frozen=True)
class LossSpec:
    type: str
    output: str
    target: str


LAYER_KEYS = {
    "rnn": ("name", "type", "cell", "units", "input", "return", "direction", "initial_state",
            "steps", "feedback"),
    "dense": ("name", "type", "units", "input", "activation"),
    "repeat": ("name", "type", "input", "steps"),
}
REQUIRED = {"rnn": ("cell", "units"), "dense": ("units", "input"), "repeat": ("input", "steps")}
ACTIVATIONS = ("linear", "tanh", "sigmoid", "relu", "softmax")
RETURNS = ("last", "sequence")
DIRECTIONS = ("forward", "backward", "bidirectional")


def read_layers(source: Source, value, inputs: dict, cells: dict, claim) -> list:
    """Read and type the ``layers`` list, in order."""
    if not isinstance(value, list):
        raise source.error(("layers",), f"expected a list of layers, got {describe(value)}")
    if not value:
        raise source.error(("layers",), "a spec needs at least one layer; the list is empty")
    reader = _LayerReader(source, inputs, cells)
    reader.all_names = [entry.get("name") for entry in value if isinstance(entry, dict)]
    reader.entries = value
    for i, entry in enumerate(value):
        if source.attempt(_read_layer, source, reader, i, entry, claim, default=False) is False:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                source.broken.add(entry["name"])  # what uses it says nothing more
    return reader.layers


def _read_layer(source: Source, reader, i: int, entry, claim) -> bool:
    path = ("layers", i)
    if not isinstance(entry, dict):
        raise source.error(path, f"expected a layer mapping, got {describe(entry)}")
    check_mapping(source, path, entry, LAYER_KEYS["rnn"] + ("activation",),
                  required=("name", "type"))
    name = check_identifier(source, path + ("name",), entry["name"], "layer name")
    kind = check_choice(source, path + ("type",), entry["type"], tuple(LAYER_KEYS))
    check_mapping(source, path, entry, LAYER_KEYS[kind], required=REQUIRED[kind])
    claim(name, path + ("name",))
    reader.read(LayerSpec(name=name, type=kind, path=path), entry)
    return True


class _LayerReader:
    def __init__(self, source: Source, inputs: dict, cells: dict):
        self.source = source
        self.inputs = inputs
        self.cells = cells
        self.layers: list[LayerSpec] = []

    def read(self, layer: LayerSpec, entry: dict) -> None:
        getattr(self, f"read_{layer.type}")(layer, entry)
        self.layers.append(layer)

    def error(self, layer: LayerSpec, key: str, message: str):
        return self.source.error(layer.path + (key,), f"layer {layer.name}: {message}")

    def value_type(self, layer: LayerSpec, name) -> ValueType:
        """The type of the input or earlier layer called ``name``."""
        if isinstance(name, str) and name in self.source.broken:
            raise Broken()
        if isinstance(name, str) and name in self.inputs:
            spec = self.inputs[name]
            return ValueType(spec.sequence, spec.features, spec.steps)
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
        raise self.error(layer, "input", f"unknown input '{name}'{did_you_mean(name, known)}; "
                                         "a layer may use the spec's inputs and earlier layers")

    def read_rnn(self, layer: LayerSpec, entry: dict) -> None:
        src, path = self.source, layer.path
        layer.units = check_int(src, path + ("units",), entry["units"])
        cell = entry["cell"]
        if isinstance(cell, str) and cell in self.cells and self.cells[cell] is None:
            raise Broken()  # a custom cell that already failed
        if not isinstance(cell, str) or cell not in self.cells:
            hint = did_you_mean(cell, self.cells) if isinstance(cell, str) else ""
            raise self.error(layer, "cell", f"unknown cell {describe(cell)}{hint}; "
                                            f"known cells: {', '.join(self.cells)}")
        layer.cell = cell
        layer.returns = check_choice(src, path + ("return",), entry.get("return", "last"), RETURNS)
        layer.direction = check_choice(src, path + ("direction",),
                                       entry.get("direction", "forward"), DIRECTIONS)
        if "feedback" in entry:
            self.read_feedback(layer, entry)
        if "input" not in entry and layer.feedback is None:
            raise src.error(path, f"layer {layer.name}: missing required key 'input'")
        layer.input = entry.get("input")
        if layer.input is None:  # fed only its own outputs: `steps` gives the length
            if "steps" not in entry:
                raise src.error(path, f"layer {layer.name}: with `feedback` and no `input`, "
                                      "give `steps: N` (how many steps to generate)")
            steps = check_int(src, path + ("steps",), entry["steps"])
        else:
            given = self.value_type(layer, layer.input)
            steps = self.read_steps(layer, entry, given)
        layer.initial_state = self.read_initial_state(layer, entry.get("initial_state", {}))
        width = layer.units * len(layer.directions)
        layer.output = ValueType(layer.returns == "sequence", width, steps)

    def read_feedback(self, layer: LayerSpec, entry: dict) -> None:
        """`feedback: D`: D is a later dense layer on this layer's sequence; its output at
        step t-1 is (part of) this layer's input at step t."""
        name = entry["feedback"]
        later = {e["name"]: e for e in self.entries[layer.path[1] + 1:]
                 if isinstance(e, dict) and isinstance(e.get("name"), str)}
        if not isinstance(name, str) or name not in later:
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
        src, path = self.source, layer.path + ("initial_state",)
        states = self.cells[layer.cell].states
        if layer.direction == "bidirectional":
            keys = [f"{d}.{s}" for d in ("fwd", "bwd") for s in states]
        else:
            keys = list(states)
        check_mapping(src, path, value, keys)
        for key, name in value.items():
            self.check_state_source(layer, path + (key,), name)
        return dict(value)

    def check_state_source(self, layer: LayerSpec, path, name) -> None:
        """An initial state is a vector input or `<layer>.<state>` of an earlier rnn layer."""
        src = self.source
        if isinstance(name, str) and name in self.inputs:
            spec = self.inputs[name]
            if spec.sequence:
                raise src.error(path, f"input '{name}' is a sequence; an initial state is a "
                                      "vector input (`sequence: false`)")
            if spec.features != layer.units:
                raise src.error(path, f"input '{name}' has {spec.features} features but layer "
                                      f"{layer.name} has {layer.units} units")
            return
        if isinstance(name, str) and name.split(".")[0] in self.source.broken:
            raise Broken()
        finals = {f"{p.name}.{d + '.' if d else ''}{s}": p for p in self.layers if p.type == "rnn"
                  for d in p.directions for s in self.cells[p.cell].states}
        if not isinstance(name, str) or name not in finals:
            choices = [n for n, s in self.inputs.items() if not s.sequence] + list(finals)
            raise src.error(path, f"unknown state source {describe(name)}"
                                  f"{did_you_mean(name, choices) if isinstance(name, str) else ''}"
                                  "; use a vector input or '<layer>.<state>' of an earlier "
                                  "rnn layer")
        if finals[name].units != layer.units:
            raise src.error(path, f"'{name}' has {finals[name].units} features but layer "
                                  f"{layer.name} has {layer.units} units")

    def read_dense(self, layer: LayerSpec, entry: dict) -> None:
        src, path = self.source, layer.path
        layer.units = check_int(src, path + ("units",), entry["units"])
        layer.activation = check_choice(src, path + ("activation",),
                                        entry.get("activation", "linear"), ACTIVATIONS)
        layer.input = entry["input"]
        given = self.value_type(layer, layer.input)
        layer.output = ValueType(given.sequence, layer.units, given.steps)

    def read_repeat(self, layer: LayerSpec, entry: dict) -> None:
        layer.input = entry["input"]
        layer.steps = check_int(self.source, layer.path + ("steps",), entry["steps"])
        given = self.value_type(layer, layer.input)
        if given.sequence:
            raise self.error(layer, "input", f"repeat needs a vector, but input '{layer.input}' "
                                             f"is {given.describe()}")
        layer.output = ValueType(True, given.features, layer.steps)


def read_outputs(source: Source, value, layers: list) -> list:
    names = [layer.name for layer in layers]
    if value is None:
        return [names[-1]]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise source.error(("outputs",), f"expected a list of layer names, got {describe(value)}")
    for i, name in enumerate(value):
        if isinstance(name, str) and name in source.broken:
            raise Broken()
        if name not in names:
            hint = did_you_mean(name, names) if isinstance(name, str) else ""
            raise source.error(("outputs", i), f"unknown layer {describe(name)}{hint}")
        if value.index(name) != i:
            raise source.error(("outputs", i), f"layer '{name}' is listed twice")
    return list(value)


def read_loss(source: Source, value, spec):
    if value is None:
        return None
    path = ("loss",)
    check_mapping(source, path, value, ("type", "output", "target"),
                  required=("type", "output", "target"))
    kind = check_choice(source, path + ("type",), value["type"], ("mse", "cross_entropy"))
    names = [layer.name for layer in spec.layers]
    output, target = value["output"], value["target"]
    if any(isinstance(name, str) and name in source.broken for name in (output, target)):
        raise Broken()  # it names a layer or a target that already failed
    if output not in names:
        hint = did_you_mean(output, names) if isinstance(output, str) else ""
        raise source.error(path + ("output",), f"unknown layer {describe(output)}{hint}")
    if not isinstance(target, str) or target not in spec.targets:
        hint = did_you_mean(target, spec.targets) if isinstance(target, str) else ""
        raise source.error(path + ("target",), f"unknown target {describe(target)}{hint}"
                                               + ("" if spec.targets else "; declare it under "
                                                  "`targets:`"))
    layer = spec.layer(output)
    wanted = spec.targets[target]
    have = ValueType(wanted.sequence, wanted.features, wanted.steps)
    if None in (have.steps, layer.output.steps):  # one follows T: compared once T is known
        have = ValueType(have.sequence, have.features, layer.output.steps)
    if layer.output != have:
        raise source.error(path + ("target",), f"target '{target}' is {have.describe()} but "
                                               f"layer {output} gives {layer.output.describe()}")
    if kind == "cross_entropy" and (layer.type != "dense" or layer.activation != "softmax"):
        raise source.error(path + ("output",), "cross_entropy needs a softmax output: set "
                                               f"`activation: softmax` on layer {output}")
    return LossSpec(kind, output, target)
