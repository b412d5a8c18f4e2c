"""Class ids, masks and dropout for ``rnnc import MODEL.keras`` (from_keras.py's importer
inherits this): ``Embedding`` reads class ids from an ``Input`` (an input with
``classes: input_dim`` and an embedding layer); ``mask_zero=True`` and ``Masking`` become
``lengths: true`` on the input they mask; dropout and noise, nothing at inference, become
a comment naming the rate.

Keras skips masked steps wherever they are; ``lengths`` model padding at the end of each
sequence, so the spec says in a comment that a mask with holes is not what they express.
In a Functional model Keras writes the mask as ops on the input (``NotEqual(ids, 0)``;
``Any(NotEqual(x, v), axis=-1)`` for Masking) passed to each recurrent layer as ``mask``:
they are read as what they compute and checked against the Embedding or Masking that
masks that input.
"""

from __future__ import annotations

MASK_OPS = ("NotEqual", "Any")  # what a Functional model computes its masks with
NOISE = {"GaussianNoise": "stddev"}  # the rate's key where it is not `rate`


def layer_name(layer: dict) -> str:
    return layer.get("name") or layer["config"]["name"]


class IdsAndMasks:
    """The part of the Keras importer for Embedding, Masking, masks and dropout notes; the
    importer gives ``tensors``, ``inputs``, ``shape``, ``lines``, ``arrays``, ``refuse``,
    ``ident``, ``dtype``, ``array`` and ``done``."""

    def init_masks(self, functional: bool) -> None:
        self.functional = functional  # masks are call arguments (else implicit, Sequential)
        self.raw: dict[str, list] = {}  # input -> its Keras batch shape
        self.ids: set[str] = set()  # inputs of class ids (integer, or read by an Embedding)
        self.classes: dict[str, int] = {}  # ids input -> its Embedding's input_dim
        self.padded: set[str] = set()  # inputs with `lengths: true`
        self.mask_of: dict[str, tuple] = {}  # padded input -> ("ne" | "any", mask value)
        self.masks: dict[tuple, tuple] = {}  # mask op's tensor -> (kind, input, value)
        self.carries: dict[str, str | None] = {}  # our name -> the input whose lengths it has
        self.plain: set[str] = set()  # inputs read by a layer, not through a Masking
        self.masked: set[tuple] = set()  # Keras tensors that are a Masking's output

    def ids_input(self, layer: dict, ident: str, shape: list) -> None:
        """An integer Input: class ids, [batch, steps] or [batch]."""
        if len(shape) not in (1, 2):
            self.refuse(layer, f"integer input of shape {shape}: class ids are [batch, steps] "
                               "or [batch], read by an Embedding")
        self.ids.add(ident)
        self.inputs[ident] = shape[1] if len(shape) == 2 else None

    def read(self, layer: dict, tensor: tuple, found: str) -> None:
        """Checks a layer other than Embedding and Masking reading our ``found``."""
        if found in self.ids:
            self.refuse(layer, f"reads the class ids of input '{found}'; a spec reads class "
                               "ids with an embedding layer only (a Keras Embedding)")
        if found in self.inputs and tensor not in self.masked:
            if self.mask_of.get(found, ("",))[0] == "any":
                self.refuse(layer, f"reads input '{found}' without its Masking; a spec's "
                                   "lengths apply to every layer that reads the input")
            self.plain.add(found)

    def embedding(self, layer: dict, tensor: tuple, group: str) -> None:
        config, found = layer["config"], self.tensors.get(tensor)
        if found not in self.inputs:
            self.refuse(layer, f"reads '{tensor[0]}', not an Input: an Embedding maps where it "
                               "reads class ids from an Input (keras.Input(shape=(T,), "
                               "dtype='int32'))")
        self.dtype(layer)
        shape = self.raw[found]
        if found not in self.ids and len(shape) != 2:
            self.refuse(layer, f"reads input '{found}' of shape {shape}; an Embedding reads "
                               "class ids: an integer Input [batch, steps] or [batch]")
        if found in self.plain:
            self.refuse(layer, f"reads input '{found}', which another layer reads as numbers; "
                               "an input is class ids or numbers")
        sequence, steps = len(shape) == 2, shape[1] if len(shape) == 2 else None
        if config.get("input_length") not in (None, steps):
            self.refuse(layer, f"input_length {config['input_length']}, but its input "
                               f"'{found}' has {steps or 'any number of'} steps (give the "
                               "Input that shape, or drop input_length)")
        for key in ("lora_rank", "quantization_config"):
            if config.get(key):
                self.refuse(layer, f"{key}: rnnc import reads an Embedding's plain table only")
        classes, units = int(config["input_dim"]), int(config["output_dim"])
        mask = ("ne", 0) if config.get("mask_zero") and sequence else None
        if found in self.classes and (self.classes[found], self.mask_of.get(found)) != (
                classes, mask):
            self.refuse(layer, f"its input '{found}' is read by another Embedding with other "
                               "input_dim or mask_zero; a spec's input has one of each")
        self.ids.add(found)
        self.classes[found], self.inputs[found] = classes, steps
        self.shape[found] = (sequence, classes)
        ident = self.ident(layer_name(layer), "embedding")
        self.arrays[f"{ident}/embeddings"] = self.array(layer, f"{group}/vars/0",
                                                        (classes, units))
        zero = config.get("mask_zero")
        self.lines.append(f"  - {{name: {ident}, type: embedding, input: {found}, units: "
                          f"{units}{', padding_id: 0' if zero else ''}}}")
        if mask:
            self.pad(found, mask, f"Embedding(mask_zero=True) on {found}: id 0 is padding",
                     "its trailing 0s")
        elif zero:
            self.note(f"Embedding(mask_zero=True) on {found}, a vector of ids: no steps to "
                      "mask; id 0 is the padding_id")
        self.done(layer, ident, sequence, units, found)

    def masking(self, layer: dict, tensor: tuple) -> None:
        found, value = self.tensors.get(tensor), layer["config"].get("mask_value", 0.0)
        if found not in self.inputs or found in self.ids or not self.shape[found][0]:
            self.refuse(layer, "Masking maps on a sequence Input directly (as that input's "
                               "`lengths: true`)")
        if found in self.plain or self.mask_of.get(found, ("any", value)) != ("any", value):
            self.refuse(layer, f"input '{found}' is also read without this Masking; a spec's "
                               "lengths apply to every layer that reads the input")
        self.tensors[(layer_name(layer), 0)] = found
        self.masked.add((layer_name(layer), 0))
        if found not in self.padded:
            self.pad(found, ("any", value), f"Masking(mask_value={value}) on {found}: steps "
                     f"whose features all equal {value} are padding", "the padding")

    def pad(self, found: str, mask: tuple, what: str, padding: str) -> None:
        """``lengths: true`` on ``found``, masked as ``mask``; the comment saying so."""
        self.padded.add(found)
        self.mask_of[found], self.carries[found] = mask, found
        self.note(what)
        self.lines += [f"  #   feed {found}.lengths: each example's number of steps before "
                       f"{padding}", "  #   (a mask with holes, padding between real steps, "
                       "is not what lengths express)"]

    def mask_op(self, layer: dict, tensor: tuple, operands: list) -> None:
        """``NotEqual(input, value)`` or ``Any(that, axis=-1)``: a mask, kept by what it is."""
        name, config = layer_name(layer), layer["config"]
        found, inner = self.tensors.get(tensor), self.masks.get(tensor)
        if layer["class_name"] == "NotEqual" and found in self.inputs and len(operands) == 1 \
                and isinstance(operands[0], (int, float)):
            self.masks[(name, 0)] = ("ne", found, operands[0])
        elif layer["class_name"] == "Any" and inner and inner[0] == "ne" and \
                config.get("axis") in (-1, 2) and not config.get("keepdims"):
            self.masks[(name, 0)] = ("any", *inner[1:])
        else:
            self.refuse(layer, "rnnc import maps the ops of a mask Keras computes from an "
                               "Input (Embedding(mask_zero=True), Masking) only")

    def check_mask(self, layer: dict, source: str, mask, recurrent: bool) -> None:
        """A layer's ``mask`` call argument is the mask of the input its data comes from."""
        carried = self.carries.get(source)
        if mask is None:
            if carried and recurrent and self.functional:
                self.refuse(layer, f"reads the padded steps of '{carried}' without its mask; a "
                                   "spec's lengths apply to every layer on the input")
            return
        tensor = mask.get("config", {}).get("keras_history", [None, 0, 0])[::2] \
            if isinstance(mask, dict) else None
        found = self.masks.get(tuple(tensor) if tensor else None)
        if found is None or carried is None or found != (self.mask_of[carried][0], carried,
                                                          self.mask_of[carried][1]):
            self.refuse(layer, "called with a mask other than that of the Embedding "
                               "(mask_zero=True) or Masking on the input it reads")

    def dropout(self, layer: dict, after: str) -> None:
        """A comment for a dropout or noise layer, identity at inference."""
        kind = layer["class_name"]
        rate = layer["config"].get(NOISE.get(kind, "rate"), 0)
        if rate:
            self.note(f"{kind}({rate}) after {after}: identity at inference; training "
                      f"{'noise' if kind in NOISE else 'dropout'} is not imported")

    def regularizer(self, layer: dict, tensor) -> None:
        """Dropout or noise: ``Dropout`` a dropout layer; the others nothing at inference
        (their output is their input), and a comment."""
        if layer["class_name"] == "Dropout" and layer["config"].get("rate"):
            return self.dropout_layer(layer, tensor)
        self.tensors[(layer_name(layer), 0)] = self.tensors.get(tensor) or self.source(
            layer, tensor)
        if tensor in self.masked:  # a dropout after a Masking
            self.masked.add((layer_name(layer), 0))
        return self.dropout(layer, self.tensors[(layer_name(layer), 0)])

    def dropout_layer(self, layer: dict, tensor) -> None:
        """Keras's Dropout: a dropout layer of the same rate (identity at inference)."""
        source = self.tensors.get(tensor) or self.source(layer, tensor)
        ident = self.ident(layer["config"]["name"], "dropout")
        self.lines.append(f"  - {{name: {ident}, type: dropout, input: {source}, "
                          f"rate: {layer['config']['rate']}}}")
        sequence, features = self.shape[source]
        self.done(layer, ident, sequence, features, source)
        if tensor in self.masked:  # a dropout after a Masking
            self.masked.add((layer["config"]["name"], 0))

    def recurrent_dropout(self, kind: str, config: dict, ident: str) -> None:
        if config.get("recurrent_dropout"):
            self.note(f"{kind}(recurrent_dropout={config['recurrent_dropout']}) as {ident}: "
                      "Keras draws a mask per gate, rnnc one mask for h[t-1] (docs/spec.md)")

    def note(self, text: str) -> None:
        self.lines.append(f"  # keras {text}")

    def array_line(self, ident: str, steps: str = "") -> str:
        """An input's or target's line: ``{features: N}`` or ``{classes: N}``, then
        ``sequence: false``, ``steps: T``, ``lengths: true`` where they apply."""
        sequence, size = self.shape[ident]
        return f"  {ident}: {{{'classes' if ident in self.classes else 'features'}: {size}" \
               f"{'' if sequence else ', sequence: false'}{steps}" \
               f"{', lengths: true' if ident in self.padded else ''}}}"
