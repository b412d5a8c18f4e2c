"""The spec: YAML -> a typed, validated ``Spec`` (SPEC.md §1–3, §5–6).

Every rule of the format is checked here, before any graph is built, and every error
names its file:line:col and key path. Layers are also *typed* here — each gets the kind
(sequence or vector), feature count and length of what it produces — so that a layer fed
a vector where it needs a sequence is caught as a spec error with its fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path as FilePath

from ..errors import Broken, Location, SpecError, closest, did_you_mean
from .cells import read_cells
from .checks import (
    MAX_PARAMETERS,
    check_bool,
    check_choice,
    check_identifier,
    check_int,
    check_mapping,
    describe,
    is_identifier,
)
from .layers import LayerSpec, ValueType, read_layers
from .params import param_infos
from .yaml_source import Source, load_source

DTYPES = ("float32", "float64")
LOSSES = ("mse", "cross_entropy")
LOSS_KEYS = ("type", "output", "target")


@dataclass(frozen=True)
class ArraySpec:
    """An input or a target: a sequence [batch, steps, features] or a vector [batch, features]."""

    name: str
    features: int  # with `classes`: the number of classes
    sequence: bool = True
    steps: int | None = None  # None: the unrolled length T
    lengths: bool = False
    classes: int | None = None  # class ids from 0 to classes - 1 ([batch, steps] or [batch])
    loc: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class LossSpec:
    type: str
    output: str
    target: str


@dataclass(frozen=True)
class UnrollSpec:
    steps: int | None = None
    bptt: str = "full"  # full | window | chunk
    k: int | None = None
    checkpoint: int | str | None = None  # keep the states every k steps: k, "auto" (⌈√T⌉)


@dataclass(eq=False)  # compared and hashed by identity: compiled artifacts are kept per spec
class Spec:
    """A validated spec. ``source`` keeps every value's location for later errors."""

    name: str
    dtype: str
    inputs: dict  # name -> ArraySpec
    targets: dict  # name -> ArraySpec
    cells: dict  # name -> CellSpec (custom cells and the built-ins that layers use)
    layers: list  # of LayerSpec, in order
    outputs: list  # of layer names
    loss: LossSpec | None
    unroll: UnrollSpec
    source: Source

    @property
    def file(self) -> str:
        return self.source.file

    def layer(self, name: str) -> LayerSpec:
        return next(layer for layer in self.layers if layer.name == name)

    def error(self, path, message: str, *, key: bool = False) -> SpecError:
        return self.source.error(path, message, key=key)


def load_spec(path, limits: bool = True) -> Spec:
    """Read and validate the spec file at ``path``; ``limits=False`` allows any size."""
    file = str(path)
    try:
        data = FilePath(path).read_bytes()
    except OSError as exc:
        raise SpecError(f"cannot read spec: {exc.strerror or exc}", Location(file)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = len(data[data.rfind(b"\n", 0, exc.start) + 1:exc.start].decode("utf-8", "replace"))
        raise SpecError(f"the spec is not UTF-8 text (byte {data[exc.start]:#04x})",
                        Location(file, line, column + 1)) from None
    return load_spec_text(text, filename=file, limits=limits)


def load_spec_text(text: str, filename: str = "<spec>", limits: bool = True) -> Spec:
    """Parse and validate spec text; ``filename`` is used in error messages."""
    source = load_source(text, filename)
    source.limits = limits
    spec = _SpecReader(source).read()
    if limits:
        source.attempt(_check_size, spec)
    source.raise_errors()
    return spec


def _check_size(spec: Spec) -> None:
    """The parameters of the layers read so far (all of them in a valid spec) are counted:
    a spec with a broken layer that is already too large says so at once."""
    total = sum(int(math.prod(info.shape)) for info in param_infos(spec))
    if total > MAX_PARAMETERS:
        raise spec.error(("layers",), f"the spec has {total:,} parameters, above the limit of "
                                      f"{MAX_PARAMETERS:,} (--allow-large lifts the limits)")


# --- the reader ---------------------------------------------------------------------------

TOP_KEYS = ("rnnc", "name", "dtype", "inputs", "targets", "cells", "layers", "outputs",
            "loss", "unroll")
ARRAY_KEYS = ("features", "classes", "sequence", "steps", "lengths")
BPTT_MODES = ("window", "chunk")
BPTT_FORMS = ("full", *BPTT_MODES)


class _SpecReader:
    def __init__(self, source: Source):
        self.source = source
        self.names: dict[str, tuple] = {}  # every user name -> its path, for uniqueness

    def read(self) -> Spec:
        """The spec, with every error kept on the source rather than raised: each part is
        checked whatever failed before it, except a part that depends on a failed one
        (``Source.broken``), which says nothing more."""
        src, top = self.source, self.source.value
        check_mapping(src, (), top, TOP_KEYS, required=("rnnc", "name", "layers"))
        if "rnnc" in top:
            src.attempt(_check_version, src, top["rnnc"])
        name = "spec"
        if "name" in top:
            name = src.attempt(check_identifier, src, ("name",), top["name"], default="spec")
        dtype = src.attempt(check_choice, src, ("dtype",), top.get("dtype", "float32"), DTYPES,
                            default="float32")
        unroll = src.attempt_part(self.read_unroll, top.get("unroll", {}),
                                  default=UnrollSpec())
        inputs = src.attempt(self.read_arrays, "inputs", top.get("inputs", {}), default={})
        targets = src.attempt(self.read_arrays, "targets", top.get("targets", {}), default={})
        if top.get("inputs", {}) == {}:
            src.broken_sections.add("inputs")  # a layer's input says nothing more
            src.keep(src.error(("inputs",) if "inputs" in top else (),
                               "a spec needs at least one input"))
        cells = read_cells(src, top.get("cells", {}), self.claim)
        layers = []
        if "layers" in top:
            layers = read_layers(src, top["layers"], inputs, cells, self.claim)
        else:
            src.broken_sections.add("layers")  # outputs and the loss say nothing more
        used = {layer.cell for layer in layers if layer.cell}
        spec = Spec(name=name, dtype=dtype, inputs=inputs, targets=targets,
                    cells={n: c for n, c in cells.items()
                           if c is not None and (n in used or not c.builtin)},
                    layers=layers, outputs=[], loss=None, unroll=unroll, source=src)
        spec.outputs = src.attempt_part(read_outputs, src, top.get("outputs"), layers,
                                        default=[])
        spec.loss = src.attempt_part(read_loss, src, top.get("loss"), spec)
        return spec

    def claim(self, name: str, path) -> None:
        """Names of inputs, targets, cells and layers are unique across the spec."""
        if name in self.names:
            self.source.broken_sections.add(path[0])  # the name meant is not known
            first = self.source.loc(self.names[name])
            raise self.source.error(path, f"name '{name}' is already used (line {first.line})")
        self.names[name] = tuple(path)

    def read_unroll(self, value) -> UnrollSpec:
        src, path = self.source, ("unroll",)
        check_mapping(src, path, value, ("steps", "bptt", "checkpoint"))
        steps = value.get("steps")
        if steps is not None:
            steps = src.attempt(check_int, src, path + ("steps",), steps)
        mode, k = src.attempt(self.read_bptt, value.get("bptt", "full"), default=("full", None))
        checkpoint = src.attempt(self.read_checkpoint, value.get("checkpoint"), mode)
        return UnrollSpec(steps, mode, k, checkpoint)

    def read_checkpoint(self, checkpoint, mode: str) -> int | str | None:
        """`checkpoint: k` (keep the states every k steps, recompute the rest in the
        backward pass) or `auto` (k = ⌈√T⌉); None without the key."""
        src, path = self.source, ("unroll", "checkpoint")
        if checkpoint is None:
            return None
        if checkpoint != "auto":
            if not isinstance(checkpoint, int) or isinstance(checkpoint, bool):
                hint = did_you_mean(checkpoint, ("auto",)) if isinstance(checkpoint, str) else ""
                raise src.error(path, "expected an integer >= 1 (keep the states every k "
                                      f"steps) or 'auto', got {describe(checkpoint)}{hint}")
            check_int(src, path, checkpoint)
        if mode == "window":
            raise src.error(path, "checkpoint does not combine with bptt {window: k} (its "
                                  "lanes read every saved step); use bptt full or {chunk: k}")
        return checkpoint

    def read_bptt(self, bptt) -> tuple:
        """`full`, `{window: k}` or `{chunk: k}`, as (mode, k)."""
        src, path = self.source, ("unroll", "bptt")
        if bptt == "full":
            return "full", None
        if not isinstance(bptt, dict):
            raise src.error(path, "expected 'full', {window: k} or {chunk: k}, "
                                  f"got {describe(bptt)}{_bptt_hint(bptt)}")
        if not check_mapping(src, path, bptt, BPTT_MODES):
            raise Broken()
        if len(bptt) != 1:
            raise src.error(path, "give exactly one of window or chunk")
        (mode, k), = bptt.items()
        return mode, check_int(src, path + (mode,), k)

    def read_arrays(self, section: str, value) -> dict:
        src = self.source
        if not isinstance(value, dict):
            src.broken_sections.add(section)
            raise src.error((section,), f"expected a mapping of names, got {describe(value)}")
        if not all(map(is_identifier, value)) or "loss" in value:
            src.broken_sections.add(section)
        arrays = {}
        for name, entry in value.items():
            array = src.attempt_part(self.read_array, section, name, entry)
            if array is not None:
                arrays[name] = array
            else:
                src.broken.add(name)
        return arrays

    def read_array(self, section: str, name: str, entry) -> ArraySpec:
        """One input or target; its name and each of its keys are checked on their own."""
        src = self.source
        path = (section, name)
        src.attempt(self.claim_array_name, section, name)
        check_mapping(src, path, entry, ARRAY_KEYS)
        features = classes = None
        if "features" in entry and "classes" in entry:
            raise src.error(path + ("classes",), "give `features` (numbers) or `classes` (class "
                                                 "ids), not both", key=True)
        if "features" not in entry and "classes" not in entry:
            if any(key not in ARRAY_KEYS for key in entry):
                raise Broken()  # a misspelt key, reported unknown
            raise src.error(path, f"{section[:-1]} '{name}': missing required key 'features' "
                                  "(or 'classes', for class ids)")
        if "features" in entry:
            features = src.attempt(check_int, src, path + ("features",), entry["features"])
        else:
            features = classes = src.attempt(check_int, src, path + ("classes",),
                                             entry["classes"])
        sequence = src.attempt(check_bool, src, path + ("sequence",), entry.get("sequence", True))
        lengths = src.attempt(check_bool, src, path + ("lengths",), entry.get("lengths", False))
        steps = entry.get("steps")
        if sequence is False and (steps is not None or lengths):
            key = "steps" if steps is not None else "lengths"
            raise src.error(path + (key,), f"'{key}' is only for sequences; "
                                           "remove it or drop `sequence: false`")
        if steps is not None:
            steps = check_int(src, path + ("steps",), steps)
        return ArraySpec(name, features, sequence, steps, lengths, classes,
                         src.loc(path, key=True))

    def claim_array_name(self, section: str, name: str) -> None:
        path = (section, name)
        check_identifier(self.source, path, name, f"{section[:-1]} name")
        if name == "loss":
            raise self.source.error(path, "'loss' is the name of the loss output; name the "
                                          f"{section[:-1]} otherwise", key=True)
        self.claim(name, path)


def _check_version(source: Source, version) -> None:
    if type(version) is not int or version != 1:
        raise source.error(("rnnc",), f"unsupported format version {version!r}; "
                                      "this rnnc reads version 1")


def _bptt_hint(value) -> str:
    """`bptt: ful` -> did you mean 'full'; `bptt: window` -> the form with its k."""
    if not isinstance(value, str):
        return ""
    meant = closest(value, BPTT_FORMS)
    if meant is None:
        return ""
    if meant == "full":
        return " (did you mean 'full'?)"
    return f" (did you mean {{{meant}: k}}?)"


# --- outputs and the loss, once the layers are read ----------------------------------------


def read_outputs(source: Source, value, layers: list) -> list:
    """The outputs, each checked on its own."""
    names = [layer.name for layer in layers]
    if value is None:
        if not names:
            raise Broken()  # every layer failed
        return [names[-1]]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise source.error(("outputs",), f"expected a list of layer names, got {describe(value)}")
    for i in range(len(value)):
        source.attempt(_check_output_name, source, value, i, names)
    return list(value)


def _check_output_name(source: Source, value: list, i: int, names: list) -> None:
    name = value[i]
    if source.quiet_about(name, "layers", names):
        raise Broken()
    if name not in names:
        hint = did_you_mean(name, names) if isinstance(name, str) else ""
        raise source.error(("outputs", i), f"unknown layer {describe(name)}{hint}")
    if value.index(name) != i:
        raise source.error(("outputs", i), f"layer '{name}' is listed twice")


def read_loss(source: Source, value, spec):
    """The loss: its type, output and target each on its own, then whether they fit."""
    if value is None:
        return None
    path = ("loss",)
    check_mapping(source, path, value, LOSS_KEYS, required=LOSS_KEYS)
    kind = output = target = None
    if "type" in value:
        kind = source.attempt(check_choice, source, path + ("type",), value["type"], LOSSES)
    if "output" in value:
        output = source.attempt(_loss_output, source, value["output"], spec)
    if "target" in value:
        target = source.attempt(_loss_target, source, value["target"], spec)
    if output is not None and target is not None:
        source.attempt(_check_target_fits, source, spec, output, target)
    if kind == "mse" and target is not None and spec.targets[target].classes is not None:
        raise source.error(path + ("type",), f"target '{target}' holds class ids, which mse "
                                             "cannot compare: use `type: cross_entropy` (or give "
                                             "the target `features` for numbers)")
    if None in (kind, output, target):
        raise Broken()
    return LossSpec(kind, output, target)


def _loss_output(source: Source, output, spec) -> str:
    names = [layer.name for layer in spec.layers]
    if source.quiet_about(output, "layers", names):
        raise Broken()
    if output not in names:
        hint = did_you_mean(output, names) if isinstance(output, str) else ""
        raise source.error(("loss", "output"), f"unknown layer {describe(output)}{hint}")
    return output


def _loss_target(source: Source, target, spec) -> str:
    if source.quiet_about(target, "targets", spec.targets):
        raise Broken()
    if not isinstance(target, str) or target not in spec.targets:
        hint = did_you_mean(target, spec.targets) if isinstance(target, str) else ""
        raise source.error(("loss", "target"), f"unknown target {describe(target)}{hint}"
                                               + ("" if spec.targets else "; declare it under "
                                                  "`targets:`"))
    return target


def _check_target_fits(source: Source, spec, output: str, target: str) -> None:
    layer = spec.layer(output)
    wanted = spec.targets[target]
    have = ValueType(wanted.sequence, wanted.features, wanted.steps)  # class ids: one-hot
    if None in (have.steps, layer.output.steps):  # one follows T: compared once T is known
        have = ValueType(have.sequence, have.features, layer.output.steps)
    if layer.output != have:
        ids = wanted.classes is not None
        what = ValueType(have.sequence, have.features, have.steps, ids)
        raise source.error(("loss", "target"), f"target '{target}' is {what.describe()} but "
                                               f"layer {output} gives {layer.output.describe()}"
                                               + ("; class ids are compared with one score per "
                                                  "class" if ids else ""))
