"""The parameters a spec declares: their keys, shapes and initialisers (``build.params``
gives them values).

Keys as docs/spec.md says (Array files): ``<layer>.<param>``, or ``<layer>.fwd.<param>`` and
``<layer>.bwd.<param>`` for bidirectional layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .spec import Spec


@dataclass(frozen=True)
class ParamInfo:
    key: str
    layer: str
    shape: tuple
    init: str
    zero_row: int | None = None  # an embedding's padding id: its row starts at zeros


def layer_input_features(spec: Spec, layer) -> int:
    """The size of what a layer reads at a step: its input's features, and the features
    fed back to it (``feedback``)."""
    fed_back = layer.feedback_units if layer.type == "rnn" else 0
    if layer.input is None:
        return fed_back
    if layer.input in spec.inputs:
        return spec.inputs[layer.input].features + fed_back
    return spec.layer(layer.input).output.features + fed_back


def param_infos(spec: Spec) -> list[ParamInfo]:
    """Every parameter of the spec, in layer order then declaration order."""
    infos = []
    for layer in spec.layers:
        if layer.type == "rnn":
            cell = spec.cells[layer.cell]
            size = layer_input_features(spec, layer)
            for direction in layer.directions:
                prefix = f"{layer.name}.{direction}." if direction else f"{layer.name}."
                for param in cell.params.values():
                    infos.append(ParamInfo(prefix + param.name, layer.name,
                                           param.concrete_shape(layer.units, size), param.init))
        elif layer.type == "dense":
            size = layer_input_features(spec, layer)
            infos.append(ParamInfo(f"{layer.name}.W", layer.name, (layer.units, size),
                                   "glorot_uniform"))
            infos.append(ParamInfo(f"{layer.name}.b", layer.name, (layer.units,), "zeros"))
        elif layer.type == "embedding":  # Keras's Embedding: uniform in [-0.05, 0.05]
            infos.append(ParamInfo(f"{layer.name}.W", layer.name, (layer.classes, layer.units),
                                   "uniform", layer.padding_id))
    return infos
