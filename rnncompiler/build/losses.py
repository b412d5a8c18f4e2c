"""Losses (docs/spec.md, Loss): the loss node of a spec, added to its forward graph."""

from __future__ import annotations

from ..errors import SpecError
from ..frontend.spec import Spec
from ..ir.graph import Graph
from ..ir.ops import OP
from .inputs import add_array_input, add_lengths_input, length_mask


def add_loss(graph: Graph, spec: Spec) -> int:
    """The loss node (docs/spec.md, Loss); its target becomes a graph input."""
    if spec.loss is None:
        raise SpecError("this spec has no `loss:`; gradients need one", spec.source.loc(()))
    output = graph.outputs[spec.loss.output] if spec.loss.output in graph.outputs else None
    if output is None:
        output = graph.layer_values[spec.loss.output]
    wanted = spec.targets[spec.loss.target]
    shape = graph[output].shape
    if wanted.sequence and shape[0] != (wanted.steps or graph.steps):
        raise SpecError(f"target '{spec.loss.target}' has {wanted.steps or graph.steps} steps "
                        f"but layer {spec.loss.output} gives {shape[0]}; set `steps: "
                        f"{shape[0]}` on target {spec.loss.target}",
                        spec.source.loc(("targets", spec.loss.target), key=True))
    target = add_array_input(graph, wanted, shape[0] if wanted.sequence else None)
    if wanted.sequence and wanted.steps is None:
        graph.follows_steps.add(spec.loss.target)
    lengths = add_lengths_input(graph, spec.loss.target) \
        if wanted.sequence and wanted.lengths else None
    if wanted.classes is not None:  # class ids: compared as one-hot probabilities
        target = graph.add(OP.one_hot, [target], classes=wanted.classes, dtype=graph.dtype,
                           place=f"{spec.loss.target}.one_hot")
    if lengths is not None:
        graph.masks[spec.loss.target] = length_mask(graph, spec.loss.target, lengths, target)
    mask = graph.masks.get(spec.loss.target, graph.masks.get(spec.loss.output)) \
        if wanted.sequence else None
    if mask is not None:  # variable lengths: the padded steps count for nothing
        prediction = output if spec.loss.type == "mse" else _logits(graph, output, spec)
        masked = OP.masked_mse if spec.loss.type == "mse" else OP.masked_cross_entropy
        return graph.add(masked, [prediction, target, mask], layer=spec.loss.output)
    if spec.loss.type == "mse":
        return graph.add(OP.mse, [output, target], layer=spec.loss.output)
    return graph.add(OP.cross_entropy, [_logits(graph, output, spec), target],
                     layer=spec.loss.output)


def _logits(graph: Graph, output: int, spec: Spec) -> int:
    """The logits of the loss's output: the values before the softmax of a dense layer with
    `activation: softmax` (a vector, or a stacked sequence), else the output itself."""
    if spec.layer(spec.loss.output).type != "dense":
        return output
    if graph[output].op == OP.softmax:
        return graph.args(output)[0]
    steps = graph.args(output) if graph[output].op == OP.stack_steps else []
    if not steps or any(graph[step].op != OP.softmax for step in steps):
        return output  # another activation: its values are the logits
    return graph.add(OP.stack_steps, [graph.args(step)[0] for step in steps],
                     layer=graph[output].layer)
