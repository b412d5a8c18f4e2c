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

from .errors import Location, SpecError
from .spec_cells import read_cells
from .spec_checks import (
    MAX_PARAMETERS,
    check_bool,
    check_choice,
    check_identifier,
    check_int,
    check_mapping,
    describe,
)
from .spec_layers import LayerSpec, LossSpec, read_layers, read_loss, read_outputs
from .yaml_source import Source, load_source

DTYPES = ("float32", "float64")
LOSSES = ("mse", "cross_entropy")


@dataclass(frozen=True)
class ArraySpec:
    """An input or a target: a sequence [batch, steps, features] or a vector [batch, features]."""

    name: str
    features: int
    sequence: bool = True
    steps: int | None = None  # None: the unrolled length T
    lengths: bool = False
    loc: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class UnrollSpec:
    steps: int | None = None
    bptt: str = "full"  # full | window | chunk
    k: int | None = None


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
        _check_size(spec)
    return spec


def _check_size(spec: Spec) -> None:
    from .params import param_infos

    total = sum(int(math.prod(info.shape)) for info in param_infos(spec))
    if total > MAX_PARAMETERS:
        raise spec.error(("layers",), f"the spec has {total:,} parameters, above the limit of "
                                      f"{MAX_PARAMETERS:,} (--allow-large lifts the limits)")


# --- the reader ---------------------------------------------------------------------------

TOP_KEYS = ("rnnc", "name", "dtype", "inputs", "targets", "cells", "layers", "outputs",
            "loss", "unroll")
ARRAY_KEYS = ("features", "sequence", "steps", "lengths")


class _SpecReader:
    def __init__(self, source: Source):
        self.source = source
        self.names: dict[str, tuple] = {}  # every user name -> its path, for uniqueness

    def read(self) -> Spec:
        src, top = self.source, self.source.value
        check_mapping(src, (), top, TOP_KEYS, required=("rnnc", "name", "layers"))
        if type(top["rnnc"]) is not int or top["rnnc"] != 1:
            raise src.error(("rnnc",), f"unsupported format version {top['rnnc']!r}; "
                                       "this rnnc reads version 1")
        name = src.attempt(check_identifier, src, ("name",), top["name"], default="spec")
        dtype = src.attempt(check_choice, src, ("dtype",), top.get("dtype", "float32"), DTYPES,
                            default="float32")
        unroll = src.attempt(self.read_unroll, top.get("unroll", {}), default=UnrollSpec())
        inputs = src.attempt(self.read_arrays, "inputs", top.get("inputs", {}), default={})
        targets = src.attempt(self.read_arrays, "targets", top.get("targets", {}), default={})
        if not inputs and not src.errors:
            raise src.error(("inputs",) if "inputs" in top else (),
                            "a spec needs at least one input")
        cells = read_cells(src, top.get("cells", {}), self.claim)
        layers = read_layers(src, top["layers"], inputs, cells, self.claim)
        src.raise_errors()  # what follows reads the layers and cells as valid
        used = {layer.cell for layer in layers if layer.cell}
        spec = Spec(name=name, dtype=dtype, inputs=inputs, targets=targets,
                    cells={n: c for n, c in cells.items() if n in used or not c.builtin},
                    layers=layers, outputs=[], loss=None, unroll=unroll, source=src)
        spec.outputs = src.attempt(read_outputs, src, top.get("outputs"), layers, default=[])
        spec.loss = src.attempt(read_loss, src, top.get("loss"), spec)
        src.raise_errors()
        return spec

    def claim(self, name: str, path) -> None:
        """Names of inputs, targets, cells and layers are unique across the spec."""
        if name in self.names:
            first = self.source.loc(self.names[name])
            raise self.source.error(path, f"name '{name}' is already used (line {first.line})")
        self.names[name] = tuple(path)

    def read_unroll(self, value) -> UnrollSpec:
        src, path = self.source, ("unroll",)
        check_mapping(src, path, value, ("steps", "bptt"))
        steps = value.get("steps")
        if steps is not None:
            steps = check_int(src, path + ("steps",), steps)
        bptt = value.get("bptt", "full")
        if bptt == "full":
            return UnrollSpec(steps)
        bpath = path + ("bptt",)
        if not isinstance(bptt, dict):
            raise src.error(bpath, "expected 'full', {window: k} or {chunk: k}, "
                                   f"got {describe(bptt)}")
        check_mapping(src, bpath, bptt, ("window", "chunk"))
        if len(bptt) != 1:
            raise src.error(bpath, "give exactly one of window or chunk")
        (mode, k), = bptt.items()
        return UnrollSpec(steps, mode, check_int(src, bpath + (mode,), k))

    def read_arrays(self, section: str, value) -> dict:
        src = self.source
        if not isinstance(value, dict):
            raise src.error((section,), f"expected a mapping of names, got {describe(value)}")
        arrays = {}
        for name, entry in value.items():
            array = src.attempt(self.read_array, section, name, entry)
            if array is not None:
                arrays[name] = array
            elif isinstance(name, str):
                src.broken.add(name)
        return arrays

    def read_array(self, section: str, name, entry) -> ArraySpec:
        src = self.source
        path = (section, name)
        check_identifier(src, path, name, f"{section[:-1]} name")
        if name == "loss":
            raise src.error(path, "'loss' is the name of the loss output; name the "
                                  f"{section[:-1]} otherwise", key=True)
        self.claim(name, path)
        check_mapping(src, path, entry, ARRAY_KEYS, required=("features",))
        sequence = check_bool(src, path + ("sequence",), entry.get("sequence", True))
        steps = entry.get("steps")
        lengths = check_bool(src, path + ("lengths",), entry.get("lengths", False))
        if not sequence and (steps is not None or lengths):
            key = "steps" if steps is not None else "lengths"
            raise src.error(path + (key,), f"'{key}' is only for sequences; "
                                           "remove it or drop `sequence: false`")
        return ArraySpec(
            name, check_int(src, path + ("features",), entry["features"]), sequence,
            None if steps is None else check_int(src, path + ("steps",), steps),
            lengths, src.loc(path, key=True))
