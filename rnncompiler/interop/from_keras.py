"""``rnnc import MODEL.keras --from keras``: a spec and its parameters from a Keras 3
``.keras`` file, read without Keras (keras_file.py): the config as JSON (a Sequential's
``layers`` in order, a Functional's with their ``inbound_nodes``), the weights with h5py
from ``layers/<class in snake case>[_<k>]`` (Keras counts them by class in the model's
order), Keras-named for ``interop.import_params``. Activations a built-in cell lacks give
a generated custom cell (import_cells.py); class ids, masks and dropout are keras_masks.py's;
what a spec cannot compute as Keras does is refused (docs/interop.md).
"""

from __future__ import annotations

import re

import numpy as np

from ..build.params import init_params
from ..errors import Location, RnncError
from ..frontend.spec import load_spec_text
from .cells import cells_section, generated_cell, import_layers, unsupported
from .keras_file import read_keras
from .keras_masks import MASK_OPS, IdsAndMasks
from .keras_masks import layer_name as _name
from .names import SpecNames

CELLS = {"SimpleRNN": "simple", "LSTM": "lstm", "GRU": "gru"}
FUNCTIONS = ("sigmoid", "tanh", "relu", "linear", "hard_sigmoid")  # import_cells.py's
GATES = {"simple": 1, "lstm": 4, "gru": 3, "gru_reset_before": 3}
ACTIVATIONS = ("linear", "tanh", "sigmoid", "relu", "softmax")  # docs/spec.md, dense
IDENTITY = ("Dropout", "SpatialDropout1D", "GaussianDropout", "GaussianNoise")
LOSSES = {"mse": "mse", "mean_squared_error": "mse", "MeanSquaredError": "mse",
          "categorical_crossentropy": "cross_entropy", "CategoricalCrossentropy": "cross_entropy"}


def import_keras(path: str, name: str) -> tuple[str, dict]:
    """(spec YAML text, our parameters) for the ``.keras`` file in ``path``."""
    config, version, weights = read_keras(path)
    try:
        return keras_spec(config, weights, name, path, version)
    except (KeyError, TypeError, IndexError, AttributeError, ValueError) as error:
        raise RnncError(f"config.json is not a Keras 3 model as rnnc import reads one "
                        f"({type(error).__name__}: {error})", Location(str(path))) from None


def keras_spec(config: dict, weights: dict, name: str, path="model.keras",
               version: str = "?") -> tuple[str, dict]:
    """(spec text, our parameters) for a model's config and its weights by h5 path."""
    importer = _Importer(path, weights, config.get("class_name") != "Sequential")
    inputs, body, outputs = _graph(config, importer.fail)
    importer.groups = _groups(body)
    for layer in inputs:
        importer.input(layer)
    for layer, source, kwargs in body:
        importer.layer(layer, source, kwargs)
    text = importer.text(name, outputs, config.get("compile_config") or {}, version)
    wanted = init_params(load_spec_text(text, filename=f"{name}.yaml"))
    return text, import_layers(importer.arrays, wanted, "keras")


def _graph(config: dict, fail):
    """(InputLayer configs, [(layer config, source tensor, call kwargs)], output tensors)
    of a Sequential or Functional model; a tensor is (Keras layer name, output index)."""
    kind, inner = config.get("class_name"), config.get("config") or {}
    if kind not in ("Sequential", "Functional", "Model") or "layers" not in inner:
        fail(f"a {kind} model: rnnc import reads Sequential and Functional models (a "
             "subclassed model has no layer graph in its config)")
    inputs = [c for c in inner["layers"] if c["class_name"] == "InputLayer"]
    layers = [c for c in inner["layers"] if c["class_name"] != "InputLayer"]
    if kind == "Sequential":
        if not inputs and not inner.get("build_input_shape"):
            fail("the Sequential model was never built: its input shape is unknown")
        inputs = inputs or [{"class_name": "InputLayer", "config": {
            "name": "x", "batch_shape": inner["build_input_shape"]}}]
        names = [_name(inputs[0])] + [_name(layer) for layer in layers]
        return inputs, [(c, (n, 0), {}) for c, n in zip(layers, names)], [(names[-1], 0)]
    body = []
    for layer in layers:
        nodes = layer.get("inbound_nodes", [])
        if len(nodes) != 1 or not isinstance(nodes[0], dict):
            fail(f"layer '{_name(layer)}' is called {len(nodes)} times (a shared layer) or "
                 "in a format before Keras 3; each layer must be called once")
        args = nodes[0].get("args", [])
        if layer["class_name"] in MASK_OPS and args and _tensor(args[0]) is not None:
            body.append((layer, _tensor(args[0]), {"operands": args[1:]}))
            continue
        if len(args) != 1 or _tensor(args[0]) is None:
            fail(f"layer '{_name(layer)}' ({layer['class_name']}) is not called on one "
                 "tensor; rnnc import maps layers of one input")
        body.append((layer, _tensor(args[0]), dict(nodes[0].get("kwargs", {}))))
    outputs = inner.get("output_layers", [])
    outputs = [outputs] if outputs and isinstance(outputs[0], str) else outputs
    return inputs, body, [(out[0], out[2]) for out in outputs]


def _tensor(value):
    """(layer name, output index) of a serialized Keras tensor, else None."""
    tensor = isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"
    return tuple(value["config"]["keras_history"][::2]) if tensor else None


def _groups(body: list) -> dict[str, str]:
    """Keras layer name -> its group in model.weights.h5, as Keras 3's saving counts them:
    ``layers/`` and the class in snake case, ``_<k>`` from its second layer on."""
    groups, used = {}, {}
    for layer, _, _ in body:
        if layer["class_name"] in MASK_OPS:  # ops, saved with no group
            continue
        snake = re.sub(r"([a-z])([A-Z])", r"\1_\2",
                       re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", layer["class_name"])).lower()
        used[snake] = used.get(snake, -1) + 1
        groups[_name(layer)] = f"layers/{snake}" + (f"_{used[snake]}" if used[snake] else "")
    return groups


def _activation(value) -> str:
    """An activation's name as Keras 3 serializes it (a string, or a dict for objects)."""
    value = value.get("config") if isinstance(value, dict) else value
    return value if isinstance(value, str) else "a custom activation"


class _Importer(IdsAndMasks):
    """Keras layers, one by one, to spec lines and Keras-named arrays."""

    def __init__(self, path, weights: dict, functional: bool = False):
        self.path, self.weights = path, weights
        self.groups: dict[str, str] = {}  # Keras layer -> its group in the h5 file
        self.lines: list[str] = []  # the spec's layers
        self.arrays: dict[str, np.ndarray] = {}  # Keras-named, by our layer names
        self.tensors: dict[tuple, str] = {}  # (Keras layer, output index) -> our name
        self.same: dict[str, str] = {}  # `<layer>.h` -> layer, where they are equal
        self.shape: dict[str, tuple] = {}  # our name -> (gives a sequence, features)
        self.inputs: dict[str, int | None] = {}  # input -> its steps (None: any; a vector)
        self.softmax: set[str] = set()  # dense layers with activation softmax
        self.names = SpecNames()
        self.cells: dict[str, str] = {}  # generated cells (import_cells.py): name -> body
        self.dtypes: set[str] = set()
        self.init_masks(functional)

    def fail(self, message: str):
        raise RnncError(message, Location(str(self.path)))

    def refuse(self, layer: dict, reason: str):
        self.fail(f"layer '{_name(layer)}' ({layer['class_name']}): {reason}")

    def ident(self, name: str, fallback: str) -> str:
        """An identifier, unique in the spec, for the Keras name ``name``."""
        return self.names.claim(name, fallback)

    def dtype(self, layer: dict) -> None:
        policy = layer["config"].get("dtype", "float32")
        policy = policy.get("config", {}).get("name") if isinstance(policy, dict) else policy
        if policy not in ("float32", "float64") or self.dtypes - {policy}:
            self.refuse(layer, f"dtype '{policy}': a spec computes in one dtype, float32 or "
                               f"float64 (the layers before: {', '.join(self.dtypes)})")
        self.dtypes.add(policy)

    def input(self, layer: dict) -> None:
        shape = layer["config"].get("batch_shape") or layer["config"].get("batch_input_shape")
        dtype = layer["config"].get("dtype")
        if isinstance(dtype, str) and dtype.startswith(("int", "uint")) and shape:
            ident = self.ident(_name(layer), "x")
            self.ids_input(layer, ident, shape)
            self.raw[ident] = shape
            return self.done(layer, ident, len(shape) == 2, None)
        if not shape or len(shape) not in (2, 3) or shape[-1] is None:
            self.refuse(layer, f"input shape {shape}: specs take [batch, steps, features] "
                               "or [batch, features] with features known")
        ident = self.ident(_name(layer), "x")
        self.inputs[ident], self.raw[ident] = shape[1] if len(shape) == 3 else None, shape
        self.done(layer, ident, len(shape) == 3, shape[-1])

    def done(self, layer: dict, ident: str, sequence: bool, features, source=None) -> None:
        """``layer`` gives our ``ident``; a sequence carries the lengths ``source`` has."""
        self.tensors[(_name(layer), 0)] = ident
        self.shape[ident] = (sequence, features)
        self.carries[ident] = self.carries.get(source) if sequence else None

    def source(self, layer: dict, tensor: tuple) -> str:
        """Our name of what ``layer`` reads: an input, a layer, or a state equal to one."""
        found = self.tensors.get(tensor)
        if found is None:
            self.refuse(layer, f"reads output {tensor[1]} of '{tensor[0]}', which no mapped "
                               "layer gives")
        if "." in found and found not in self.same:
            self.refuse(layer, f"reads the final state {found}; a spec feeds a final state "
                               "only as another rnn layer's initial_state")
        self.read(layer, tensor, found)
        return self.same.get(found, found)

    def layer(self, layer: dict, tensor: tuple, kwargs: dict) -> None:
        kind, config = layer["class_name"], layer["config"]
        if kind in MASK_OPS:
            return self.mask_op(layer, tensor, kwargs["operands"])
        states, mask = kwargs.pop("initial_state", None), kwargs.pop("mask", None)
        extra = [k for k, v in kwargs.items() if v is not None and k != "training"]
        if extra:
            self.refuse(layer, f"called with {', '.join(extra)}; rnnc import maps calls on "
                               "one tensor (and initial_state, mask)")
        if kind in IDENTITY:  # dropout and noise: nothing at inference
            return self.regularizer(layer, tensor)
        if kind == "Masking":
            return self.masking(layer, tensor)
        if kind == "Embedding":
            return self.embedding(layer, tensor, self.groups[_name(layer)])
        if states is not None and kind not in CELLS and kind != "Bidirectional":
            self.refuse(layer, "initial_state is for recurrent layers")
        self.dtype(layer)
        source, group = self.source(layer, tensor), self.groups[_name(layer)]
        self.check_mask(layer, source, mask, kind in CELLS or kind == "Bidirectional")
        if kind in CELLS or kind == "Bidirectional":
            self.recurrent(layer, source, states or [], group)
        elif kind == "Dense":
            self.dense(layer, config, source, f"{group}/vars")
        elif kind == "TimeDistributed" and config["layer"]["class_name"] == "Dense":
            self.dense(layer, config["layer"]["config"], source, f"{group}/layer/vars")
        elif kind == "TimeDistributed":
            self.refuse(layer, f"TimeDistributed({config['layer']['class_name']}): only "
                               "TimeDistributed(Dense) maps (a dense layer at every step)")
        elif kind == "RepeatVector":
            ident = self.ident(_name(layer), "repeat")
            self.lines.append(f"  - {{name: {ident}, type: repeat, input: {source}, "
                              f"steps: {config['n']}}}")
            self.done(layer, ident, True, self.shape[source][1], source)
        else:
            self.refuse(layer, f"a spec has no {kind} layer; rnnc import maps InputLayer, "
                               "SimpleRNN, LSTM, GRU, Bidirectional, Dense, "
                               "TimeDistributed(Dense), RepeatVector, Embedding, Masking "
                               "and Dropout")

    def dense(self, layer: dict, config: dict, source: str, group: str) -> None:
        activation = _activation(config.get("activation", "linear"))
        if activation not in ACTIVATIONS:
            self.refuse(layer, f"activation '{activation}': a spec's dense layer has "
                               f"{', '.join(ACTIVATIONS)}")
        units, (sequence, features) = int(config["units"]), self.shape[source]
        ident = self.ident(_name(layer), "dense")
        kernel = self.array(layer, f"{group}/0", (features, units))
        self.arrays[f"{ident}/kernel"] = kernel
        self.arrays[f"{ident}/bias"] = self.array(layer, f"{group}/1", (units,)) \
            if config.get("use_bias", True) else np.zeros(units, kernel.dtype)
        if activation == "softmax":
            self.softmax.add(ident)
        self.lines.append(f"  - {{name: {ident}, type: dense, units: {units}, input: {source}"
                          + (f", activation: {activation}}}" if activation != "linear" else "}"))
        self.done(layer, ident, sequence, units, source)

    def recurrent(self, layer: dict, source: str, states: list, group: str) -> None:
        if layer["class_name"] == "Bidirectional":
            inner, (base, cell) = self.bidirectional(layer, layer["config"])
            direction, parts = "bidirectional", (("/forward", "/forward_layer"),
                                                 ("/backward", "/backward_layer"))
        else:
            inner = layer["config"]
            base, cell = self.cell(layer, layer["class_name"], inner)
            direction = "backward" if inner.get("go_backwards") else "forward"
            parts = (("", ""),)
        units, sequence = int(inner["units"]), bool(inner.get("return_sequences"))
        if direction == "backward" and sequence:
            self.refuse(layer, "go_backwards with return_sequences: Keras returns the steps "
                               "in reverse order, a spec's backward layer keeps them aligned "
                               "with the input (put it in a Bidirectional, or return the last)")
        ident = self.ident(_name(layer), "rnn")
        for ours, theirs in parts:
            self.cell_arrays(layer, f"{group}{theirs}/cell/vars", ident + ours, base, units,
                             self.shape[source][1])
        tags = ("fwd.", "bwd.") if direction == "bidirectional" else ("",)
        keys = [f"{tag}{state}" for tag in tags for state in ("h", "c")[:1 + (base == "lstm")]]
        line = (f"  - {{name: {ident}, type: rnn, cell: {cell}, units: {units}, input: {source}, "
                f"return: {'sequence' if sequence else 'last'}")
        line += "" if direction == "forward" else f", direction: {direction}"
        line += "".join(f", {key}: {inner[key]}" for key in ("dropout", "recurrent_dropout")
                        if inner.get(key))
        if states:  # Keras's order: as the cell's states, forward's then backward's
            pairs = [f"{k}: {self.state_source(layer, _tensor(s))}" for k, s in zip(keys, states)]
            line += f", initial_state: {{{', '.join(pairs)}}}"
        self.lines.append(line + "}")
        self.recurrent_dropout(layer["class_name"] if direction != "bidirectional" else
                               f"Bidirectional({layer['config']['layer']['class_name']})",
                               inner, ident)
        self.done(layer, ident, sequence, units * len(tags), source)
        if inner.get("return_state"):  # Keras returns [output, *states]
            for k, key in enumerate(keys, start=1):
                self.tensors[(_name(layer), k)] = f"{ident}.{key}"
            if direction != "bidirectional" and not sequence:  # its last output is its h
                self.same[f"{ident}.h"] = ident

    def state_source(self, layer: dict, tensor) -> str:
        found = self.tensors.get(tensor) if tensor else None
        if found is None or ("." not in found and (found not in self.inputs
                                                   or self.shape[found][0])):
            self.refuse(layer, "an initial_state must be a vector input or another "
                               "layer's final state (return_state)")
        return found

    def bidirectional(self, layer: dict, config: dict) -> tuple[dict, tuple]:
        merge = config.get("merge_mode")
        if merge != "concat":
            self.refuse(layer, f"merge_mode {merge!r}: a spec's bidirectional layer "
                               "concatenates [forward, backward]; only 'concat' maps")
        forward, backward = config["layer"], config.get("backward_layer") or config["layer"]
        kind, (fwd, bwd) = forward["class_name"], (forward["config"], backward["config"])
        if kind not in CELLS or backward["class_name"] != kind or fwd.get("go_backwards") or \
                self.cell(layer, f"its {kind}", fwd) != self.cell(layer, f"its {kind}", bwd) \
                or fwd["units"] != bwd["units"]:
            self.refuse(layer, f"its forward {kind} and backward {backward['class_name']} "
                               "differ; a spec's bidirectional layer runs one SimpleRNN, LSTM "
                               "or GRU cell, the same both ways")
        return fwd, self.cell(layer, f"its {kind}", fwd)

    def cell(self, layer: dict, kind: str, config: dict) -> tuple[str, str]:
        """(built-in base cell, the cell: it or a generated one) for a SimpleRNN / LSTM / GRU
        config, or a refusal."""
        base = CELLS[kind.split()[-1]]
        if base == "gru" and not config.get("reset_after", True):
            base = "gru_reset_before"
        given = {"activation": _activation(config.get("activation", "tanh"))}
        if base != "simple":
            given["recurrent_activation"] = _activation(config.get("recurrent_activation",
                                                                   "sigmoid"))
        for key, function in given.items():
            if function not in FUNCTIONS:
                self.refuse(layer, f"{kind} has {key} '{function}': "
                                   + unsupported(function, FUNCTIONS))
        if config.get("stateful"):
            self.refuse(layer, "stateful: a spec carries no state between calls (give "
                               "initial states as inputs instead)")
        f, g = given.get("recurrent_activation"), given["activation"]
        cell, body = generated_cell(base, (g,) if base == "simple" else
                                    (f, g, g) if base == "lstm" else (f, g))
        if body is not None:
            self.cells[cell] = body
        return base, cell

    def cell_arrays(self, layer, group: str, keras: str, cell: str, units: int, features):
        """The kernel, recurrent kernel and bias of one direction, Keras-named."""
        width = GATES[cell] * units
        self.arrays[f"{keras}/kernel"] = self.array(layer, f"{group}/0", (features, width))
        self.arrays[f"{keras}/recurrent_kernel"] = self.array(layer, f"{group}/1",
                                                              (units, width))
        shape = (2, width) if cell == "gru" else (width,)  # reset_after: [input, recurrent]
        self.arrays[f"{keras}/bias"] = self.array(layer, f"{group}/2", shape) \
            if f"{group}/2" in self.weights else np.zeros(shape, np.float32)  # use_bias=False

    def array(self, layer: dict, key: str, shape: tuple) -> np.ndarray:
        value = self.weights.get(key)
        if value is None or value.shape != tuple(shape):
            self.refuse(layer, f"model.weights.h5's '{key}' is "
                               f"{'missing' if value is None else list(value.shape)}, its "
                               f"config says {list(shape)}")
        return value

    def text(self, name: str, outputs: list, compiled: dict, version: str) -> str:
        outs = []
        for tensor in outputs:
            found = self.tensors.get(tuple(tensor), "")
            if not found or ("." in found and found not in self.same):
                self.fail(f"the model's output {tensor[1]} of '{tensor[0]}' is no layer's "
                          "output (a final state?); spec outputs are layers")
            outs.append(self.same.get(found, found))
        unread = sorted(self.ids - set(self.classes))
        if unread:
            self.fail(f"the integer input '{unread[0]}' is read by no Embedding; a spec reads "
                      "class ids with an embedding layer")
        lengths = {steps for ident, steps in self.inputs.items() if self.shape[ident][0]}
        one = len(lengths) == 1 and None not in lengths  # all sequences of one known length
        inputs = [self.array_line(ident, f", steps: {steps}" if steps and not one else "")
                  for ident, steps in self.inputs.items()]
        loss = self.loss(compiled, outs)
        return "\n".join([
            f"# imported from a Keras {version} model by rnnc import; arrays are batch-first",
            "rnnc: 1", f"name: {name}", f"dtype: {next(iter(self.dtypes), 'float32')}",
            "inputs:", *inputs, *(loss[1:] if loss else []), *self.cell_lines(), "layers:",
            *self.lines,
            f"outputs: [{', '.join(outs)}]", *(loss[:1] if loss else []),
            *([f"unroll: {{steps: {lengths.pop()}}}"] if one else [])]) + "\n"

    def cell_lines(self) -> list[str]:
        """``cells:``, each generated cell named apart from the spec's other names."""
        named = {}
        for cell, body in self.cells.items():
            named[self.ident(cell, "cell")] = body
            self.lines = [line.replace(f"cell: {cell},", f"cell: {list(named)[-1]},")
                          for line in self.lines]
        return cells_section(named)

    def loss(self, compiled: dict, outs: list):
        """The ``loss:`` line and the ``targets:`` lines for a compiled model's mse or
        categorical cross-entropy on its one output; else None (the spec has no loss)."""
        loss = compiled.get("loss")
        if isinstance(loss, dict):
            options = loss.get("config") or {}
            loss = None if options.get("from_logits") or options.get("label_smoothing") \
                else loss.get("class_name")
        kind = LOSSES.get(loss) if isinstance(loss, str) else None
        if kind is None or len(outs) != 1 or (kind == "cross_entropy"
                                              and outs[0] not in self.softmax):
            return None
        target = self.ident("y", "target")
        self.shape[target] = self.shape[outs[0]]
        return (f"loss: {{type: {kind}, output: {outs[0]}, target: {target}}}", "targets:",
                self.array_line(target))
