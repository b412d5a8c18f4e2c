"""The generated module: a header, the helpers it needs, ``init_params``, ``forward`` and,
for a training build, ``loss_and_grads`` and ``train_step``.

Helpers are the ops' own reference evaluations and initialisers, copied from their source,
so the module computes exactly what the compiler's reference does and needs only numpy.
"""

from __future__ import annotations

import inspect

from rnncompiler import __version__
from rnncompiler.build import initializers
from rnncompiler.ir import ops
from rnncompiler.ir.graph import Graph
from rnncompiler.lowering import Plan

from . import layouts
from .function import FunctionWriter
from .lowering import HELPERS

CHECK_INPUT = '''
def check_input(inputs, name):
    """The array `name` as DTYPE, checked against its shape in INPUTS or TARGETS."""
    if name not in inputs:
        raise KeyError(f"missing input {name!r}")
    array = np.asarray(inputs[name], dtype=DTYPE)
    expected = {**INPUTS, **TARGETS}[name]
    if array.shape[1:] != expected:
        raise ValueError(f"input {name!r}: expected shape [batch, "
                         f"{', '.join(map(str, expected))}], got {list(array.shape)}")
    return array
'''

CHECK_IDS = '''
def check_ids(inputs, name):
    """The class ids `name` as int64, each from 0 to CLASSES[name] - 1."""
    array = np.asarray(inputs[name])
    expected, classes = {**INPUTS, **TARGETS}[name], CLASSES[name]
    if array.dtype.kind not in "iu" or array.shape[1:] != expected:
        raise ValueError(f"input {name!r}: expected ints of shape [batch, "
                         f"{', '.join(map(str, expected))}], got {array.dtype} "
                         f"{list(array.shape)}")
    if array.size and (array.min() < 0 or array.max() >= classes):
        raise ValueError(f"input {name!r}: ids from 0 to {classes - 1}, got "
                         f"{array.min()} to {array.max()}")
    return array.astype(np.int64, copy=False)
'''

INIT_ZERO_ROWS = '''
def init_params(seed=0):
    """Fresh parameters, equal to `rnnc init --seed SEED`."""
    params = {name: initialize(init, shape, seed, name, DTYPE)
              for name, (shape, init) in PARAMS.items()}
    for name, row in ZERO_ROWS.items():  # an embedding's padding id starts at zeros
        params[name][row] = 0
    return params
'''

INIT_PARAMS = '''
def init_params(seed=0):
    """Fresh parameters, equal to `rnnc init --seed SEED`."""
    return {name: initialize(init, shape, seed, name, DTYPE)
            for name, (shape, init) in PARAMS.items()}
'''

WORKSPACE = '''
# Sets of arrays kept between calls: a call takes one (or a new one) and gives it back
# when it returns; list.pop and list.append are atomic, so calls running at once, in
# threads, never share a set.
_workspaces = []


def workspace(kept, key, shape):
    """The array ``key`` of the set ``kept``: what a loop fills a step at a time, or a
    product over whole sequences, that the function does not return. Fresh arrays at
    every call would cost their memory's page faults again (the allocator gives large
    freed arrays back to the system)."""
    array = kept.get(key)
    if array is None or array.shape != shape:
        array = kept[key] = np.empty(shape, dtype=DTYPE)
    return array


def steps_first(kept, key, sequence):
    """A sequence [batch, steps, features] as [steps, features, batch] (feature-major),
    copied into the kept array ``key``."""
    copy = workspace(kept, key, (*sequence.shape[1:], sequence.shape[0]))
    np.copyto(copy, np.moveaxis(sequence, 0, -1))
    return copy


def release_workspace():
    """Free the kept arrays (the next calls allocate them again)."""
    _workspaces.clear()
'''

TRAIN_STEP = '''
def train_step(params, inputs, learning_rate=0.01):
    """One step of gradient descent: (loss before the step, the updated parameters)."""
    loss, grads = loss_and_grads(params, inputs)
    return loss, {name: value - learning_rate * grads[f"grad.{name}"]
                  for name, value in params.items()}
'''


def _docstring_safe(text: str) -> str:
    """``text`` escaped for a docstring: it reads back as itself and can end nothing."""
    escaped = text.encode("unicode_escape").decode("ascii")
    return escaped.replace('"', '\\"')


class ModuleWriter:
    def __init__(self, forward: tuple[Graph, Plan], training: tuple | None = None,
                 spec_file: str | None = None, steps: int | None = None):
        self.forward = forward
        self.training = training
        self.spec_file = spec_file
        self.steps = steps  # the T the module takes (its code reads T off the inputs)

    def source(self) -> str:
        graph = self.forward[0]
        targets = {}
        if self.training:
            training_graph = self.training[0]
            targets = {n: self.shape_of(training_graph, n) for n in training_graph.inputs
                       if n not in graph.inputs}
        self.uses_workspace = False
        functions = self.function("forward", *self.forward, [
            "The outputs of the network: each output layer, and every recurrent",
            "layer's final states as \"<layer>.<state>\"."])
        if self.training:
            functions += ["", ""] + self.function("loss_and_grads", *self.training, [
                "The loss and its gradient for every parameter, keyed \"grad.<param>\";",
                "`inputs` holds the targets too."], pair=True)
            functions += ["", "", TRAIN_STEP.strip("\n")]
        lines = self.header(graph, targets)
        lines += self.helpers()
        zero_rows = any("zero_row" in graph[node].attrs for node in graph.params.values())
        check_input = CHECK_INPUT
        if self.classes:  # class ids are ints, checked against their classes
            check_input = check_input.replace(
                '    array = np.asarray(inputs[name], dtype=DTYPE)\n',
                '    if name in CLASSES:\n        return check_ids(inputs, name)\n'
                '    array = np.asarray(inputs[name], dtype=DTYPE)\n')
        lines += ["", (INIT_ZERO_ROWS if zero_rows else INIT_PARAMS).strip("\n"), "", "",
                  check_input.strip("\n"), "", ""]
        if self.classes:
            lines += [CHECK_IDS.strip("\n"), "", ""]
        if self.uses_workspace:
            lines += [WORKSPACE.strip("\n"), "", ""]
        return "\n".join(lines + functions).rstrip() + "\n"

    @property
    def classes(self) -> dict[str, int]:
        """Inputs (and targets) of class ids -> their number of classes."""
        found = {}
        for graph, _ in filter(None, [self.forward, self.training]):
            for name, node in graph.inputs.items():
                if "classes" in graph[node].attrs:
                    found[name] = graph[node].attrs["classes"]
        return found

    def header(self, graph: Graph, targets: dict) -> list[str]:
        origin = f" from {_docstring_safe(self.spec_file)}" if self.spec_file else ""
        feeds = ", ".join(f'"{n}": {n}_array' for n in [*graph.inputs, *targets])
        usage = ["    params = init_params(seed=0)",
                 f"    outputs = forward(params, {{{feeds}}})"]
        if self.training:
            usage.append(f"    loss, grads = loss_and_grads(params, {{{feeds}}})")
        kept = []
        if self.uses_workspace:
            kept = ["", "The large arrays a function fills and does not return (what its loops",
                    "fill, products over whole sequences) are kept between calls, one set",
                    "per call running at once; release_workspace() frees them."]
        lines = [f'"""{graph.name}: the network, generated by rnncompiler {__version__}{origin}.',
                 "", "Standalone: it needs only numpy. Arrays are batch-first: a sequence is",
                 "[batch, steps, features], a vector [batch, features].", "", *usage, *kept,
                 '"""', "", "import numpy as np", "", f"DTYPE = np.{graph.dtype}", "",
                 "# parameter name -> (shape, initializer)", "PARAMS = {"]
        for name, node in graph.params.items():
            data = graph[node]
            lines.append(f'    "{name}": ({data.shape!r}, "{data.attrs["init"]}"),')
        lines += ["}", "", "# input name -> shape of one example", "INPUTS = {"]
        lines += [f'    "{name}": {self.shape_of(graph, name)!r},' for name in graph.inputs]
        lines += ["}", "TARGETS = {"]
        lines += [f'    "{name}": {shape!r},' for name, shape in targets.items()]
        lines.append("}")
        if self.classes:
            lines += ["# inputs of class ids (ints) -> their number of classes", "CLASSES = {"]
            lines += [f'    "{name}": {count},' for name, count in self.classes.items()]
            lines.append("}")
        zero_rows = {name: graph[node].attrs["zero_row"] for name, node in graph.params.items()
                     if "zero_row" in graph[node].attrs}
        if zero_rows:
            lines += ["# embedding tables -> the row of their padding id", "ZERO_ROWS = {"]
            lines += [f'    "{name}": {row},' for name, row in zero_rows.items()]
            lines.append("}")
        return [*lines, "", ""]

    def shape_of(self, graph: Graph, name: str) -> tuple:
        """The shape of one example of input ``name``, its length T where it follows T."""
        shape = graph[graph.inputs[name]].shape
        if self.steps is not None and name in graph.follows_steps:  # [T, n], or ids [T]
            return (self.steps, *shape[1:])
        return shape

    def helpers(self) -> list[str]:
        used = {data.op for graph, _ in filter(None, [self.forward, self.training])
                for _, data in graph.items()}
        names = []
        for op in sorted(used):
            for name in HELPERS.get(op, ()):
                if name not in names:
                    names.append(name)
        functions = [ops.reference_function(name) for name in names]
        functions += [initializers.name_seed, initializers.initialize, initializers._orthogonal]
        lines = []
        for function in functions:
            lines += [*inspect.getsource(function).rstrip().split("\n"), "", ""]
        return lines[:-2]

    def function(self, name: str, graph: Graph, program: Plan, doc: list[str],
                 pair: bool = False) -> list[str]:
        """``name``; where a loop runs one step at a time, written in both layouts, with
        ``name`` choosing one per call."""
        if all(loop.whole for loop in program.loops) \
                or any(loop.checkpoint for loop in program.loops):  # (segments.py: batch-major)
            return self.written(name, graph, program, doc, pair)
        first = next(iter(graph.inputs))
        batch_major, feature_major = f"_{name}_batch_major", f"_{name}_feature_major"
        return [
            f"def {name}(params, inputs):", *self.docstring(doc),
            "    # one example: batch-major, where `h @ W_T` is the faster product (a GEMV);",
            "    # more: feature-major ([features, batch]: `W @ h`, each gate a block of rows)",
            f'    if check_input(inputs, "{first}").shape[0] == 1:',
            f"        return {batch_major}(params, inputs)",
            f"    return {feature_major}(params, inputs)", "", "",
            *self.written(batch_major, graph, program, [
                f"{name}, arrays batch-major: a vector [batch, features], a sequence",
                "[batch, steps, features]."], pair),
            "", "",
            *self.written(feature_major, graph, program, [
                f"{name}, arrays feature-major: the batch axis last ([features, batch],",
                "[steps, features, batch]); it returns them batch-major (views)."], pair,
                feature_major=True)]

    def docstring(self, doc: list[str]) -> list[str]:
        quoted = [f'    """{doc[0]}', *[f"    {line}" for line in doc[1:]]]
        quoted[-1] += '"""'
        return quoted

    def written(self, name: str, graph: Graph, program: Plan, doc: list[str],
                pair: bool = False, feature_major: bool = False) -> list[str]:
        writer = FunctionWriter(graph, program, function=name, feature_major=feature_major)
        body = writer.body()
        if writer.uses_workspace:  # a set of kept arrays, given back before returning
            self.uses_workspace = True
            body = ["    kept = _workspaces.pop() if _workspaces else {}", *body,
                    "    _workspaces.append(kept)"]

        def returned(node: int) -> str:
            text = writer.expr(node)[0]
            if feature_major and graph[node].batched:
                return layouts.to_batch_major(text, len(graph[node].shape) + 1)
            return text

        returns = [f'    "{key}": {returned(node)},' for key, node in graph.outputs.items()
                   if not (pair and key == "loss")]
        if pair:  # (loss, grads)
            loss = writer.expr(graph.outputs["loss"])[0]
            tail = [f"    return {loss}, {{", *[f"    {r}" for r in returns], "    }"]
        else:
            tail = ["    return {", *[f"    {r}" for r in returns], "    }"]
        return [f"def {name}(params, inputs):", *self.docstring(doc), *body, *tail]
