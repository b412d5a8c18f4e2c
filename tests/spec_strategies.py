"""Hypothesis strategies that draw *valid* rnnc specs across the whole spec language.

``specs()`` draws complete spec texts (``rnnc: 1`` ... with a ``loss``) for fuzzing the
compiler: whatever it draws, ``rnncompiler.load_spec_text`` accepts, and the spec can be
run and differentiated at the drawn T (``DrawnSpec.steps``). Each draw also names the
features of the format it exercises (``DrawnSpec.features``, all of them in ``FEATURES``),
so that a fuzzer can report which parts of the language its examples covered.

Specs are built as Python dicts, one layer at a time, from what the layers so far make
(sequences of T or of their own length, vectors), choosing only combinations the
validator accepts, then written with PyYAML's safe dumper, which quotes names such as
``on`` or ``null`` that YAML would otherwise read as booleans or nothing.

Custom cells are drawn as equations that stay finite over 30 steps: every state goes
through a squashing function (tanh, sigmoid, softmax, a clip), is a gated or convex sum
with its previous value (the LSTM's c, the GRU's h), a bounded factor times its previous
value, or a copy of another bounded value; exp and log only appear in bounded forms such
as ``exp(-relu(z))`` and ``log(1 + sigmoid(z))``, and division is by nonzero constants
only. Now and then a cell reads no x[t] at all.

Sizes stay small (units and features 1..4) so that each spec compiles in a moment. The
custom cells are drawn by cell_strategies.py, names from the pools of spec_names.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cell_strategies import FUNCTIONS, CellWriter
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy
from spec_names import (
    CELL_NAMES,
    INPUT_NAMES,
    LAYER_NAMES,
    TARGET_NAMES,
    YAML_WORDS,
    fresh,
)
from spec_yaml import dump_spec

# --- the public interface -------------------------------------------------------------------


@dataclass(frozen=True)
class DrawnSpec:
    """A valid spec's text, the T to run it at, and the features of the format it uses."""

    text: str
    steps: int
    features: frozenset[str]


BUILTIN_CELLS = ("simple", "lstm", "gru", "gru_reset_before")
BUILTIN_STATES = {"simple": ("h",), "lstm": ("h", "c"), "gru": ("h",),
                  "gru_reset_before": ("h",)}
ACTIVATIONS = ("linear", "tanh", "sigmoid", "relu", "softmax")
DIRECTIONS = ("forward", "backward", "bidirectional")

FEATURES: tuple[str, ...] = (
    # T, dtype and the unroll section
    "steps:1", "steps:2", "steps:long",
    "dtype:float32", "dtype:float64",
    "unroll:steps", "unroll:steps_from_arrays",
    "bptt:full", "bptt:window", "bptt:chunk", "checkpoint:k", "checkpoint:auto",
    # inputs and targets
    "input:sequence", "input:vector", "input:own_steps", "inputs:several",
    "lengths", "lengths:target", "target:own_steps",
    "input:classes", "layer:embedding", "embedding:on_vector", "embedding:padding_id",
    # layers
    *(f"cell:{name}" for name in (*BUILTIN_CELLS, "custom")),
    *(f"direction:{name}" for name in DIRECTIONS),
    "return:last", "return:sequence", "stacked", "one_to_many", "layer:repeat",
    *(f"dense:{name}" for name in ACTIVATIONS), "dense:on_vector", "dense:on_sequence",
    "initial_state:input", "initial_state:layer", "initial_state:bidirectional",
    "initial_state:from_bidirectional", "encoder_decoder",
    "feedback", "feedback:with_input", "feedback:vector_input", "feedback:no_input",
    "outputs", "explicit_defaults", "names:yaml_words",
    # dropout (in the training graph: masks drawn by random_data)
    "layer:dropout", "dropout:on_sequence", "dropout:on_vector", "dropout:rate_zero",
    "rnn:dropout", "rnn:recurrent_dropout",
    # the loss
    "loss:mse", "loss:cross_entropy", "loss:vector_target", "loss:sequence_target",
    "loss:logits", "loss:class_target",
    # custom cells
    "custom:one_state", "custom:two_states", "custom:output_key", "custom:output_second",
    "custom:shared", "custom:param_input", "custom:param_recurrent", "custom:param_vector",
    "custom:param_concat", "custom:param_named_W_b", "custom:param_init",
    "custom:constant", "custom:negative_constant", "custom:unary_minus", "custom:division",
    "custom:repeated_subexpression", "custom:intermediate", "custom:scalar_local",
    "custom:input_local", "custom:concat", "custom:state_after_assignment", "custom:state_copy",
    "custom:ignores_input",
    "custom:equations_list", "custom:comment",
    *(f"custom:fn:{name}" for name in FUNCTIONS),
)

MAX_STEPS = 30
MAX_SIZE = 4  # units and features

# T: both ends get a real chance — 1, 2, and more than the compiler's 8 representative steps
STEPS = st.one_of(st.integers(1, 3), st.integers(1, MAX_STEPS))
SIZES = st.integers(1, MAX_SIZE)


def specs(max_layers: int = 4) -> SearchStrategy[DrawnSpec]:
    """Valid specs with at most ``max_layers`` layers (at least 1), each with a loss."""
    if max_layers < 1:
        raise ValueError(f"max_layers must be at least 1, got {max_layers}")
    return _specs(max_layers)


@st.composite
def _specs(draw, max_layers: int) -> DrawnSpec:
    return _SpecBuilder(draw, draw(STEPS), max_layers).build()


# --- the spec -------------------------------------------------------------------------------


@dataclass
class _Value:
    """An input or a layer as later layers see it: a sequence (``steps``: its own length,
    or None to follow T) or a vector."""

    name: str
    sequence: bool
    features: int
    steps: int | None = None
    layer: str = "input"  # the layer type that makes it, or "input"


class _SpecBuilder:
    """Builds one spec dict layer by layer, then its loss, outputs and unroll section."""

    def __init__(self, draw, steps: int, max_layers: int):
        self.draw = draw
        self.steps = steps
        self.max_layers = max_layers
        self.names: set[str] = set()  # inputs, targets, cells and layers share one namespace
        self.inputs: dict[str, dict] = {}
        self.targets: dict[str, dict] = {}
        self.cells: dict[str, dict] = {}
        self.cell_states = dict(BUILTIN_STATES)
        self.layers: list[dict] = []
        self.values: list[_Value] = []
        self.finals: list[tuple[str, int]] = []  # ("<layer>.<key>", units) of earlier rnns
        self.features: set[str] = set()

    def build(self) -> DrawnSpec:
        self.add_first_inputs()
        self.add_body()
        loss = self.add_loss()
        spec = {"rnnc": 1, "name": self.draw(st.sampled_from(("fuzz", "net", "spec_1")))}
        spec.update(self.dtype())
        spec["inputs"] = self.inputs
        spec["targets"] = self.targets
        if self.cells:
            spec["cells"] = self.cells
        spec["layers"] = self.layers
        spec.update(self.outputs())
        spec["loss"] = loss
        spec.update(self.unroll())
        self.note_names()
        self.features |= {"steps:1"} if self.steps == 1 else set()
        self.features |= {"steps:2"} if self.steps == 2 else set()
        self.features |= {"steps:long"} if self.steps > 10 else set()
        if len(self.inputs) > 1:
            self.features.add("inputs:several")
        unknown = self.features - set(FEATURES)
        assert not unknown, f"features missing from FEATURES: {sorted(unknown)}"
        return DrawnSpec(dump_spec(spec), self.steps, frozenset(self.features))

    # -- small draws

    def maybe(self, chance: int = 2) -> bool:
        """True about once in ``chance`` draws (shrinks to False)."""
        return self.draw(st.integers(0, chance - 1)) == chance - 1

    def explicit(self, entry: dict, key: str, default) -> None:
        """Sometimes write a key at its default value: defaults written out must mean the
        same as defaults left out."""
        if self.maybe(4):
            entry[key] = default
            self.features.add("explicit_defaults")

    def own_steps(self) -> int:
        """The length of a sequence that does not follow T: often T itself, else 1..12."""
        return self.draw(st.one_of(st.just(self.steps), st.integers(1, 12)))

    def room(self) -> int:
        return self.max_layers - len(self.layers)

    def pick(self, values: list[_Value]) -> _Value:
        """One of ``values``, the latest first (stacks grow on the newest layer)."""
        return self.draw(st.sampled_from(values[::-1]))

    def sequences(self) -> list[_Value]:
        return [value for value in self.values if value.sequence]

    def rnn_sequences(self) -> list[_Value]:
        return [value for value in self.sequences() if value.layer == "rnn"]

    def vectors(self) -> list[_Value]:
        return [value for value in self.values if not value.sequence]

    # -- inputs

    def add_first_inputs(self) -> None:
        for _ in range(self.draw(st.integers(1, 3))):
            kind = self.draw(st.sampled_from(("sequence", "sequence", "vector", "own_steps")))
            if self.maybe(4) and self.room() > 0:
                self.add_embedded_input(kind)
            else:
                self.add_input(kind, self.draw(SIZES))

    def add_embedded_input(self, kind: str) -> _Value:
        """An input of class ids and the embedding layer that reads it (ids feed nothing
        else)."""
        classes = self.draw(st.integers(1, 6))
        ids = self.add_input(kind, classes, classes=True)
        self.values.remove(ids)
        name = fresh(self.draw, LAYER_NAMES, self.names, "L")
        units = self.draw(SIZES)
        entry = {"name": name, "type": "embedding", "input": ids.name, "units": units}
        if self.maybe(3):
            entry["padding_id"] = self.draw(st.integers(0, classes - 1))
            self.features.add("embedding:padding_id")
        self.features.add("layer:embedding")
        if not ids.sequence:
            self.features.add("embedding:on_vector")
        value = _Value(name, ids.sequence, units, ids.steps, "embedding")
        self.layers.append(entry)
        self.values.append(value)
        return value

    def add_input(self, kind: str, features: int, steps: int | None = None,
                  classes: bool = False) -> _Value:
        """A new input: a sequence following T, one of its own ``steps``, or a vector; of
        numbers, or with ``classes`` of class ids (``features`` of them)."""
        name = fresh(self.draw, INPUT_NAMES, self.names, "in")
        entry: dict = {"classes" if classes else "features": features}
        if classes:
            self.features.add("input:classes")
        value = _Value(name, kind != "vector", features)
        if kind == "vector":
            entry["sequence"] = False
            self.features.add("input:vector")
        else:
            self.explicit(entry, "sequence", True)
            self.features.add("input:sequence")
            if kind == "own_steps":
                value.steps = entry["steps"] = steps or self.own_steps()
                self.features.add("input:own_steps")
            if self.maybe(4):
                entry["lengths"] = True
                self.features.add("lengths")
            else:
                self.explicit(entry, "lengths", False)
        self.inputs[name] = entry
        self.values.append(value)
        return value

    # -- layers

    def add_body(self) -> None:
        """Layers until the drawn count; the loss may add a head after them."""
        wanted = self.draw(st.integers(1, self.max_layers))
        while len(self.layers) < wanted:
            moves = self.moves(wanted - len(self.layers))
            getattr(self, f"add_{self.draw(st.sampled_from(moves))}")()

    def moves(self, room: int) -> list[str]:
        """The layer moves possible with what exists and ``room`` layers left."""
        moves = []
        if self.sequences():
            moves.append("rnn")
        if self.rnn_sequences():
            moves.append("stack")
        moves.append("dense")
        if self.vectors():
            moves += ["repeat", "one_to_many"]
        if self.finals:
            moves.append("decoder")
        if room >= 2:
            moves.append("feedback")
        moves.append("dropout")
        return moves

    def add_rnn(self) -> None:
        source = self.pick(self.sequences())
        if source.layer == "rnn":
            self.features.add("stacked")
        self.add_rnn_layer(source)

    def add_stack(self) -> None:
        """An rnn layer on an earlier rnn layer's sequence."""
        self.features.add("stacked")
        self.add_rnn_layer(self.pick(self.rnn_sequences()))

    def add_one_to_many(self) -> None:
        """An rnn on a vector, fed it at every one of its `steps`."""
        self.features.add("one_to_many")
        self.add_rnn_layer(self.pick(self.vectors()), steps=self.own_steps())

    def add_decoder(self) -> None:
        """A decoder reading an input of its own length, started from an earlier rnn
        layer's final states (encoder-decoder)."""
        self.features.add("encoder_decoder")
        units = self.draw(st.sampled_from(sorted({units for _, units in self.finals})))
        kind = self.draw(st.sampled_from(("own_steps", "own_steps", "sequence")))
        source = self.add_input(kind, self.draw(SIZES))
        self.add_rnn_layer(source, units=units, from_layer=True)

    def add_feedback(self) -> None:
        """An rnn fed back the output of the dense layer after it (generation): with no
        input (`steps` gives the length), a sequence input, or a vector input."""
        self.features.add("feedback")
        modes = ["no_input", "vector", "sequence"] if self.sequences() else ["no_input", "vector"]
        mode = self.draw(st.sampled_from(modes))
        dense_name = fresh(self.draw, LAYER_NAMES, self.names, "L")
        if mode == "no_input":
            self.features.add("feedback:no_input")
            rnn = self.add_rnn_layer(None, steps=self.own_steps(), feedback=dense_name)
        elif mode == "sequence":
            self.features.add("feedback:with_input")
            rnn = self.add_rnn_layer(self.pick(self.sequences()), feedback=dense_name)
        else:
            self.features.add("feedback:vector_input")  # as a caption from an image
            vectors = self.vectors()
            source = self.pick(vectors) if vectors else self.add_input("vector", self.draw(SIZES))
            rnn = self.add_rnn_layer(source, steps=self.own_steps(), feedback=dense_name)
        self.add_dense_layer(rnn, name=dense_name)

    def add_rnn_layer(self, source: _Value | None, *, steps: int | None = None,
                      feedback: str | None = None, units: int | None = None,
                      from_layer: bool = False) -> _Value:
        """An rnn layer on ``source`` (None: fed only its feedback); ``steps`` for a vector
        input or none; ``from_layer`` starts every state from earlier layers' finals."""
        name = fresh(self.draw, LAYER_NAMES, self.names, "L")
        entry: dict = {"name": name, "type": "rnn", "cell": self.cell()}
        if units is None:
            earlier = sorted({units for _, units in self.finals})
            units = self.draw(st.one_of(SIZES, st.sampled_from(earlier))) if earlier \
                else self.draw(SIZES)
        entry["units"] = units
        if source is not None:
            entry["input"] = source.name
        if feedback is not None:
            direction, returns = "forward", "sequence"
        else:
            direction = self.draw(st.sampled_from(DIRECTIONS))
            returns = self.draw(st.sampled_from(("last", "sequence")))
        self.write_choice(entry, "return", returns, "last")
        self.write_choice(entry, "direction", direction, "forward")
        self.features |= {f"direction:{direction}", f"return:{returns}"}
        for key in ("dropout", "recurrent_dropout"):  # of x[t]; of h[t-1] in products
            if self.maybe(3):
                entry[key] = self.rate()
                self.features.add(f"rnn:{key}")
            else:
                self.explicit(entry, key, 0.0)
        if steps is not None:
            entry["steps"] = steps
        if feedback is not None:
            entry["feedback"] = feedback
        keys = self.state_keys(entry["cell"], direction)
        initial = self.initial_state(keys, units, from_layer)
        if initial:
            entry["initial_state"] = initial
        if source is not None and steps is None:
            steps = source.steps
        width = units * (2 if direction == "bidirectional" else 1)
        value = _Value(name, returns == "sequence", width, steps, "rnn")
        self.layers.append(entry)
        self.values.append(value)
        self.finals += [(f"{name}.{key}", units) for key in keys]
        return value

    def write_choice(self, entry: dict, key: str, value: str, default: str) -> None:
        if value != default:
            entry[key] = value
        else:
            self.explicit(entry, key, default)

    def state_keys(self, cell: str, direction: str) -> list[str]:
        states = self.cell_states[cell]
        if direction == "bidirectional":
            return [f"{side}.{state}" for side in ("fwd", "bwd") for state in states]
        return list(states)

    def cell(self) -> str:
        """A built-in cell, a new custom cell, or a custom cell an earlier layer uses."""
        choices = [*BUILTIN_CELLS, "new_custom", "new_custom"]
        if self.cells:
            choices += ["shared_custom"] * 2
        choice = self.draw(st.sampled_from(choices))
        if choice == "shared_custom":
            self.features.add("custom:shared")
            name = self.draw(st.sampled_from(sorted(self.cells)))
        elif choice == "new_custom":
            name = fresh(self.draw, CELL_NAMES, self.names, "cell")
            writer = CellWriter(self.draw)
            self.cells[name] = writer.write()
            self.cell_states[name] = writer.states
            self.features |= writer.features
        else:
            name = choice
        self.features.add(f"cell:{name if name in BUILTIN_CELLS else 'custom'}")
        return name

    def initial_state(self, keys: list[str], units: int, from_layer: bool) -> dict:
        """Sources of some of ``keys``: vector inputs of ``units`` features (made when
        needed) or earlier rnn layers' final states of as many units."""
        finals = [key for key, size in self.finals if size == units]
        if not (from_layer or self.maybe(3)):
            return {}
        initial = {}
        for key in keys:
            choices = ["layer"] * bool(finals) if from_layer else ["none", "input", "layer"]
            if not finals and "layer" in choices:
                choices.remove("layer")
            choice = self.draw(st.sampled_from(choices)) if choices else "none"
            if choice == "input":
                initial[key] = self.vector_input(units)
                self.features.add("initial_state:input")
            elif choice == "layer":
                initial[key] = self.draw(st.sampled_from(finals))
                self.features.add("initial_state:layer")
                if re.search(r"\.(fwd|bwd)\.", initial[key]):
                    self.features.add("initial_state:from_bidirectional")
        if initial and "." in keys[0]:
            self.features.add("initial_state:bidirectional")
        return initial

    def vector_input(self, features: int) -> str:
        """A vector input of ``features``: an existing one, or a new one."""
        same = [name for name, entry in self.inputs.items()
                if entry.get("sequence") is False and entry.get("features") == features]
        if same and self.draw(st.booleans()):
            return self.draw(st.sampled_from(same))
        return self.add_input("vector", features).name

    def add_dense(self) -> None:
        self.add_dense_layer(self.pick(self.values))

    def add_dense_layer(self, source: _Value, *, name: str | None = None,
                        activation: str | None = None) -> _Value:
        name = name or fresh(self.draw, LAYER_NAMES, self.names, "L")
        units = self.draw(SIZES)
        activation = activation or self.draw(st.sampled_from(ACTIVATIONS))
        entry = {"name": name, "type": "dense", "units": units, "input": source.name}
        self.write_choice(entry, "activation", activation, "linear")
        self.features.add(f"dense:{activation}")
        self.features.add("dense:on_sequence" if source.sequence else "dense:on_vector")
        value = _Value(name, source.sequence, units, source.steps, "dense")
        self.layers.append(entry)
        self.values.append(value)
        return value

    def add_dropout(self) -> None:
        """A dropout layer on any value (the identity but in the training graph)."""
        source = self.pick(self.values)
        name = fresh(self.draw, LAYER_NAMES, self.names, "L")
        self.layers.append({"name": name, "type": "dropout", "input": source.name,
                            "rate": self.rate()})
        self.values.append(_Value(name, source.sequence, source.features, source.steps,
                                  "dropout"))
        self.features |= {"layer:dropout",
                          "dropout:on_sequence" if source.sequence else "dropout:on_vector"}

    def rate(self) -> float:
        """A dropout rate: now and then 0 (no mask at all)."""
        rate = self.draw(st.sampled_from((0.5, 0.0, 0.1, 0.25, 0.9)))
        if rate == 0:
            self.features.add("dropout:rate_zero")
        return rate

    def add_repeat(self) -> None:
        source = self.pick(self.vectors())
        name = fresh(self.draw, LAYER_NAMES, self.names, "L")
        steps = self.own_steps()
        self.layers.append({"name": name, "type": "repeat", "input": source.name,
                            "steps": steps})
        self.values.append(_Value(name, True, source.features, steps, "repeat"))
        self.features.add("layer:repeat")

    # -- the loss and its target

    def add_loss(self) -> dict:
        """A loss on a layer with a target of its shape (cross-entropy: sometimes of class
        ids). cross_entropy reads logits: any layer's values, or a softmax dense layer's
        values before the softmax (an existing one, or a head added when there is room)."""
        kind = self.draw(st.sampled_from(("mse", "cross_entropy")))
        layer_values = [value for value in self.values if value.layer != "input"]
        softmax = [value for value in layer_values if self.is_softmax(value.name)]
        if kind == "cross_entropy" and layer_values and self.maybe(3):
            output = self.pick(layer_values)  # its values are the logits
            self.features |= {"loss:cross_entropy"} | (
                set() if self.is_softmax(output.name) else {"loss:logits"})
            return {"type": kind, "output": output.name,
                    "target": self.add_target(output, classes=self.maybe(2))}
        if kind == "cross_entropy" and not softmax and self.room() > 0:
            softmax = [self.add_dense_layer(self.pick(self.values), activation="softmax")]
        elif kind == "mse" and self.room() > 0 and self.maybe(3):
            layer_values.append(self.add_dense_layer(self.pick(self.values)))
        if kind == "cross_entropy" and not softmax:
            kind = "mse"
        output = self.pick(softmax if kind == "cross_entropy" else layer_values)
        self.features.add(f"loss:{kind}")
        classes = kind == "cross_entropy" and self.maybe(3)
        return {"type": kind, "output": output.name,
                "target": self.add_target(output, classes=classes)}

    def is_softmax(self, name: str) -> bool:
        entry = next(entry for entry in self.layers if entry["name"] == name)
        return entry["type"] == "dense" and entry.get("activation") == "softmax"

    def add_target(self, output: _Value, classes: bool = False) -> str:
        """A target of ``output``'s shape (with ``classes``, class ids: one per step or
        example). A sequence of fixed length needs `steps` on the target unless that
        length is T (a target follows T at run time otherwise)."""
        name = fresh(self.draw, TARGET_NAMES, self.names, "target")
        entry: dict = {"classes" if classes else "features": output.features}
        if classes:
            self.features.add("loss:class_target")
        if not output.sequence:
            entry["sequence"] = False
            self.features.add("loss:vector_target")
        else:
            self.features.add("loss:sequence_target")
            self.explicit(entry, "sequence", True)
            length = output.steps if output.steps is not None else self.steps
            if output.steps not in (None, self.steps) or self.maybe(4):
                entry["steps"] = length
                self.features.add("target:own_steps")
            if self.maybe(4):
                entry["lengths"] = True
                self.features.add("lengths:target")
        self.targets[name] = entry
        return name

    # -- the rest of the spec

    def outputs(self) -> dict:
        if not self.maybe(3):
            return {}
        names = [entry["name"] for entry in self.layers]
        chosen = self.draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
        self.features.add("outputs")
        return {"outputs": chosen}

    def dtype(self) -> dict:
        dtype = self.draw(st.sampled_from(("float32", "float64")))
        self.features.add(f"dtype:{dtype}")
        if dtype == "float64" or self.maybe(4):
            return {"dtype": dtype}
        return {}

    def unroll(self) -> dict:
        """`unroll:` with T (usually), without it (T from the arrays), and a truncation."""
        unroll: dict = {}
        if self.draw(st.integers(0, 3)) > 0:
            unroll["steps"] = self.steps
            self.features.add("unroll:steps")
        else:
            self.features.add("unroll:steps_from_arrays")
        mode = self.draw(st.sampled_from(("full", "window", "chunk")))
        self.features.add(f"bptt:{mode}")
        if mode != "full":
            unroll["bptt"] = {mode: self.draw(st.integers(1, self.steps + 2))}
        elif self.maybe(3):
            unroll["bptt"] = "full"
        if mode != "window" and self.maybe(2):  # (a window's lanes read every step)
            every = self.draw(st.integers(0, self.steps + 2))  # 0: auto
            self.features.add(f"checkpoint:{'k' if every else 'auto'}")
            unroll["checkpoint"] = every or "auto"
        return {"unroll": unroll} if unroll else {}

    def note_names(self) -> None:
        if self.names & YAML_WORDS:
            self.features.add("names:yaml_words")
