"""The layers without a recurrence — ``dense``, ``repeat``, ``embedding`` and ``dropout``
— read and typed: each produces, from what it reads, the kind, features and length that
``ValueType`` says (the layer reader of ``layers.py`` takes these from here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import Broken
from .checks import check_choice, check_int
from .dropout import check_rate
from .value_types import ValueType

if TYPE_CHECKING:
    from .layers import LayerSpec

ACTIVATIONS = ("linear", "tanh", "sigmoid", "relu", "softmax")


class PlainLayers:
    """Mixed into the layer reader, which gives ``source``, ``inputs``, ``error`` and
    ``value_type``."""

    def read_dense(self, layer: LayerSpec, entry: dict) -> None:
        src, path = self.source, layer.path
        if "units" in entry:
            layer.units = src.attempt(check_int, src, path + ("units",), entry["units"])
        layer.activation = src.attempt(check_choice, src, path + ("activation",),
                                       entry.get("activation", "linear"), ACTIVATIONS)
        if "input" not in entry:
            raise Broken()  # reported missing
        layer.input = entry["input"]
        given = self.value_type(layer, layer.input)
        if layer.units is None:
            raise Broken()
        layer.output = ValueType(given.sequence, layer.units, given.steps)

    def read_repeat(self, layer: LayerSpec, entry: dict) -> None:
        if "steps" in entry:
            layer.steps = self.source.attempt(check_int, self.source, layer.path + ("steps",),
                                              entry["steps"])
        if "input" not in entry:
            raise Broken()  # reported missing
        layer.input = entry["input"]
        given = self.value_type(layer, layer.input)
        if given.sequence:
            raise self.error(layer, "input", f"repeat needs a vector, but input '{layer.input}' "
                                             f"is {given.describe()}")
        if layer.steps is None:
            raise Broken()
        layer.output = ValueType(True, given.features, layer.steps)

    def read_embedding(self, layer: LayerSpec, entry: dict) -> None:
        """Ids -> vectors: each id's row of the layer's table, at every step."""
        src, path = self.source, layer.path
        if "units" in entry:
            layer.units = src.attempt(check_int, src, path + ("units",), entry["units"])
        if "input" not in entry:
            raise Broken()  # reported missing
        layer.input = entry["input"]
        given = self.value_type(layer, layer.input)
        if not given.ids:
            fix = (f"give input '{layer.input}' `classes: N` instead of `features` (ids from 0 "
                   "to N-1)" if layer.input in self.inputs else "an embedding reads an input "
                   "with `classes: N`")
            raise self.error(layer, "input", f"an embedding layer reads class ids, but input "
                                             f"'{layer.input}' is {given.describe()}: {fix}")
        layer.classes = given.features
        if "padding_id" in entry:
            padding = check_int(src, path + ("padding_id",), entry["padding_id"], minimum=0)
            if padding >= layer.classes:
                raise self.error(layer, "padding_id", f"padding_id {padding} is not an id of "
                                                      f"input '{layer.input}' (0 to "
                                                      f"{layer.classes - 1})")
            layer.padding_id = padding
        if layer.units is None:
            raise Broken()
        layer.output = ValueType(given.sequence, layer.units, given.steps)

    def read_dropout(self, layer: LayerSpec, entry: dict) -> None:
        """Produces what its input produces: the same kind, features and length."""
        if "rate" in entry:
            layer.rate = self.source.attempt(check_rate, self.source, layer.path + ("rate",),
                                             entry["rate"])
        if "input" not in entry:
            raise Broken()  # reported missing
        layer.input = entry["input"]
        given = self.value_type(layer, layer.input)
        if layer.rate is None:
            raise Broken()
        layer.output = given
