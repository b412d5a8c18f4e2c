"""The meaning of the nodes ``rnnc import --from onnx`` maps to layers: RNN / LSTM / GRU
operators (recurrent records), Gemm and MatMul with their bias Add and activation (dense
records), and graph outputs; rnncompiler/import_onnx_graph.py walks the graph with them.

A reference to what a layer reads is ``(source id, variant)``: variant ``seq`` (every
step), ``last`` (the last step of a sequence), ``state`` (an operator's Y_h) or ``vec``
(a dense head's output on a vector).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .cells import DEFAULTS, unsupported
from .onnx_values import ONE, Const, Other, Refused, View, Zeros, mono, product, show

RECURRENT = {"RNN": "simple", "LSTM": "lstm", "GRU": "gru"}
GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}
ROLES = {"RNN": "f", "LSTM": "f, g, h", "GRU": "f, g"}  # what `activations` lists
CELL_FUNCTIONS = {"sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu"}  # lower-cased
DIRECTIONS = {"forward": "forward", "reverse": "backward", "bidirectional": "bidirectional"}
ACTIVATIONS = {"Tanh": "tanh", "Sigmoid": "sigmoid", "Relu": "relu", "Softmax": "softmax"}


@dataclass
class Source:
    """A tracked tensor in its own terms: features ``feat`` (atoms, outermost first),
    batch ``b`` and time ``t`` atoms (``t`` None for a vector)."""

    id: str
    kind: str  # input | seq | state | cstate | dense
    feat: tuple
    b: str | None
    t: str | None
    label: str  # for messages
    owner: int | None = None  # index into Walker.rnns or Walker.denses


@dataclass
class Recurrent:
    node: str  # the node's name ('' if none)
    op: str
    cell: str
    units: int
    direction: str
    arrays: dict  # W, R, B in ONNX layout
    input: tuple  # reference
    y: str  # source ids
    y_h: str
    layout: int
    label: str = ""  # "LSTM '<node or its Y>'", for messages
    activations: tuple = ()  # ours (import_cells.py), in ONNX's order: f (g, h)
    coupled: bool = False  # LSTM input_forget=1; peepholes: arrays["P"]


@dataclass
class Dense:
    node: str
    W: np.ndarray  # [units, features]
    b: np.ndarray | None
    activation: str
    input: tuple
    out: str = ""


class Layers:
    """Walker's part that makes records (its state: space, sources, rnns, denses, fresh,
    order, consumers, inputs, opset)."""

    def _new_source(self, source: Source, axes) -> View:
        self.sources[source.id] = source
        return View(source.id, tuple(axes))

    def _recurrent(self, node, ins, attrs) -> list:
        op, name = node.op_type, node.name or node.output[0]
        ins = ins + [None] * (8 - len(ins))
        for key in ("clip", "activation_alpha", "activation_beta"):
            if key in attrs:
                raise Refused(f"attribute '{key}' has no counterpart in the cells rnnc import "
                              "writes (built-in, or generated with Sigmoid, Tanh, Relu); write "
                              "the cell as a custom cell")
        direction = attrs.get("direction", b"forward")
        direction = direction.decode() if isinstance(direction, bytes) else direction
        dirs = 2 if direction == "bidirectional" else 1
        activations = _activations(op, attrs.get("activations"), dirs)
        if ins[4] is not None:
            raise Refused("takes sequence_lens; rnnc import maps full-length sequences only "
                          "(a spec declares per-example lengths with `lengths: true`)")
        for slot, label in ((5, "initial_h"), (6, "initial_c")):
            self._zero_state(ins[slot], node.input[slot] if len(node.input) > slot else "", label)
        arrays = {}
        for slot, label in ((1, "W"), (2, "R"), (3, "B")):
            if not isinstance(ins[slot], Const | type(None)) or (ins[slot] is None and slot < 3):
                raise Refused(f"its {label} must be an initializer or a Constant, not "
                              f"{self.describe(ins[slot])}")
            if ins[slot] is not None:
                arrays[label] = np.asarray(ins[slot].array)
        if ins[7] is not None:  # peepholes: a generated cell (import_cells.py), unless zeros
            if not isinstance(ins[7], Const):
                raise Refused(f"its P must be an initializer or a Constant, not "
                              f"{self.describe(ins[7])}")
            if np.any(ins[7].array):
                arrays["P"] = np.asarray(ins[7].array)
        w = arrays["W"]
        if w.ndim != 3 or w.shape[0] != dirs:
            raise Refused(f"W has shape {list(w.shape)}, not [{dirs}, gates*hidden, input]")
        units = int(attrs.get("hidden_size", arrays["R"].shape[-1]))
        if w.shape[1] != GATES[op] * units:
            raise Refused(f"W has {w.shape[1]} rows, not {GATES[op]} gates x {units}")
        if "P" in arrays and arrays["P"].shape != (dirs, 3 * units):
            raise Refused(f"P has shape {list(arrays['P'].shape)}, not [{dirs}, {3 * units}]")
        arrays.setdefault("B", np.zeros((dirs, 2 * w.shape[1]), dtype=w.dtype))
        layout = int(attrs.get("layout", 0))
        if not isinstance(ins[0], View):
            raise Refused(f"its X is {self.describe(ins[0])}, not a tracked sequence")
        ref, t, b = self._sequence(ins[0], layout, w.shape[2])
        cell = RECURRENT[op]
        if cell == "gru" and not attrs.get("linear_before_reset", 0):
            cell = "gru_reset_before"
        k = len(self.rnns)
        d, h = (self.space.add(f"{k}:{name}.{a}", mono(n)) for a, n in (("D", dirs), ("H", units)))
        label = f"{op} '{name}'"
        common = {"feat": (d, h), "b": b, "owner": k}
        y = self._new_source(Source(f"{k}:Y", "seq", t=t, label=f"{label} (its Y)", **common),
                             [(t,), (d,), (b,), (h,)] if layout == 0 else [(b,), (t,), (d,), (h,)])
        states = [(d,), (b,), (h,)] if layout == 0 else [(b,), (d,), (h,)]
        y_h = self._new_source(Source(f"{k}:Y_h", "state", t=None, label=f"{label} (its Y_h)",
                                      **common), states)
        y_c = self._new_source(Source(f"{k}:Y_c", "cstate", t=None, label=f"{label} (its Y_c)",
                                      **common), states)
        self.order.append(("rnn", k))
        self.rnns.append(Recurrent(node.name, op, cell, units, DIRECTIONS[direction], arrays, ref,
                                   y.source, y_h.source, layout, label, activations,
                                   op == "LSTM" and bool(attrs.get("input_forget", 0))))
        return [y, y_h, y_c]

    def _zero_state(self, value, tensor: str, label: str) -> None:
        if value is None or isinstance(value, Zeros) or \
                (isinstance(value, Const) and not np.any(value.array)):
            return
        if tensor in self.inputs:
            raise Refused(f"its {label} comes from graph input '{tensor}'; rnnc import maps zero "
                          "initial states only (a spec written by hand can take `initial_state` "
                          "from a vector input)")
        what = value.origin if isinstance(value, Other) else self.describe(value)
        raise Refused(f"its {label} is not zeros ({what}); rnnc import maps zero initial states "
                      "only")

    def _sequence(self, view: View, layout: int, features: int):
        """X of a recurrent operator: [T, batch, features] (layout 0) or batch-first."""
        src, space = self.sources[view.source], self.space
        self._plain(view, "feeds one step or one direction of", "X")
        axes = space.normal(view)
        feat = tuple(a for a in src.feat if space.sizes[a] != ONE)
        if src.kind not in ("input", "seq", "dense") or (src.t is None and src.kind != "input"):
            raise Refused(f"its X is {src.label}, not a sequence")
        if len(axes) != 3 or axes[2] != feat:
            raise Refused(f"its X is {src.label} laid out as {self.layout_of(view)}, not "
                          f"{'[T, batch, features]' if layout == 0 else '[batch, T, features]'}")
        if space.sizes[src.feat[0]][1] and src.kind == "input":  # features known only now
            space.sizes[src.feat[0]] = mono(features)
        given = product(space.sizes[a] for a in src.feat)
        if given != mono(features):
            raise Refused(f"its X has {show(given)} features but W takes {features}")
        roles = (0, 1) if layout == 0 else (1, 0)
        t, b = (self._atom_of(view, roles[0]), self._atom_of(view, roles[1]))
        if src.kind == "input" and src.t is None:
            pending = [f"{src.id}[0]", f"{src.id}[1]"]
            t = t or next(a for a in pending if a != b)
            b = b or next(a for a in pending if a != t)
            src.t, src.b = t, b
        t, b = t or src.t, b or src.b
        if (t, b) != (src.t, src.b):
            raise Refused(f"its X is {src.label} with batch and time swapped (layout {layout})")
        return (src.id, "seq"), t, b

    def _atom_of(self, view: View, axis: int):
        """The batch or time atom that axis ``axis`` holds (None: an axis of size 1)."""
        src, atoms = self.sources[view.source], view.axes[axis]
        known = [a for a in atoms if a in (src.t, src.b)
                 or (src.kind == "input" and a in (f"{src.id}[0]", f"{src.id}[1]"))]
        big = self.space.big(view, axis)
        if len(big) > 1 or (big and big != known[:1]) or (len(known) > 1 and big):
            raise Refused(f"merges the batch or time axis of {src.label} with another")
        return big[0] if big else (known[0] if len(known) == 1 else None)

    def _plain(self, view: View, what: str, slot: str, allow_last: bool = False) -> str:
        """The variant of ``view``: ``seq`` / ``state`` / ``vec``, or ``last``; refuses a view
        with other atoms fixed (one direction, a step other than the last)."""
        src, space = self.sources[view.source], self.space
        last = False
        for atom, index in view.fixed:
            if space.sizes[atom] == ONE:
                continue
            if atom == src.t and allow_last and space.is_last(atom, index):
                last = True
                continue
            which = "the step" if atom == src.t else "the direction" if atom.endswith(".D") \
                else "index"
            raise Refused(f"{what} {src.label} ({which} {index} only) as its {slot}; a spec's "
                          "layers take whole sequences, the last step, or both directions")
        if src.kind == "cstate":
            raise Refused(f"takes {src.label}, the cell state: a spec's layers read h only "
                          "(`rnnc run` writes the final c as <layer>.c)")
        if last:
            return "last"
        return {"state": "state", "input": "seq", "seq": "seq"}.get(
            src.kind, "seq" if src.t is not None else "vec")

    def layout_of(self, view: View) -> str:
        """``[batch, T, features]`` and the like: how ``view`` lays out its source."""
        src, names, space = self.sources[view.source], [], self.space
        feat = tuple(a for a in src.feat if space.sizes[a] != ONE)
        words = {"D": "directions", "H": "hidden", "U": "units"}
        fixed = view.fixes()
        for axis in view.axes:
            big = tuple(a for a in axis if not space.trivial(a, fixed))
            roles = [a for a in axis if a in (src.b, src.t) and a not in fixed]
            names.append("features" if big and big == feat else "*".join(
                "batch" if a == src.b else "T" if a == src.t else
                words.get(a.split(".")[-1], a) for a in big or roles[:1]) or "1")
        if src.b and not any("batch" in n for n in names) and "1" in names:  # a batch of 1
            names[names.index("1")] = "batch"
        return "[" + ", ".join(names) + "]"

    def _dense_op(self, node, ins, attrs):
        a, weight = ins[0], ins[1]
        bias = ins[2] if len(ins) > 2 else None
        if not isinstance(a, View):
            raise Refused(f"its input A is {self.describe(a)}; rnnc import maps a tracked tensor "
                          "times weights")
        if not isinstance(weight, Const) or not isinstance(bias, Const | type(None)):
            raise Refused(f"its weights must be initializers or Constants, not "
                          f"{self.describe(weight)}")
        w = np.asarray(weight.array)
        if node.op_type == "Gemm":
            if attrs.get("transA", 0):
                raise Refused("has transA=1; rnnc import maps A [batch, features]")
            w = (w if attrs.get("transB", 0) else w.T) * attrs.get("alpha", 1.0)
        else:
            w = w.T
        if w.ndim != 2:
            raise Refused(f"its weights have shape {list(weight.array.shape)}, not 2-D")
        b = None
        if bias is not None:
            b = _bias(bias.array, w.shape[0]) * attrs.get("beta", 1.0)
        ref, lead = self._features(a, w.shape[1])
        k = len(self.denses)
        self.denses.append(Dense(node.name, w, b, "linear", ref))
        return self._dense_out(node, k, lead)

    def _dense_out(self, node, k: int, lead) -> View:
        record, src = self.denses[k], self.sources[self.denses[k].input[0]]
        u = self.space.add(f"dense{k}.U", mono(record.W.shape[0]))
        t = src.t if record.input[1] == "seq" else None
        record.out = f"dense{k}"
        self.order.append(("dense", k))
        self.fresh[node.output[0]] = k
        name = node.name or node.output[0]
        return self._new_source(Source(record.out, "dense", (u,), src.b, t,
                                       f"{node.op_type} '{name}'", k), list(lead) + [(u,)])

    def _features(self, view: View, features: int):
        """A dense head's input: features last, batch (and time) before."""
        src, space = self.sources[view.source], self.space
        variant = self._plain(view, "takes one step or one direction of", "input",
                              allow_last=True)
        axes = space.normal(view)
        feat = tuple(a for a in src.feat if space.sizes[a] != ONE)
        if not axes or axes[-1] != feat or len(axes) > 3:
            raise Refused(f"takes {src.label} laid out as {self.layout_of(view)}; the features "
                          "must be the last axis")
        given = product(space.sizes[a] for a in src.feat)
        if given != mono(features):
            raise Refused(f"multiplies {show(given)} features by weights for {features}")
        if src.kind == "input" and src.t is None:  # batch-first, as nothing says otherwise
            if len(axes) != 3:
                raise Refused(f"takes {src.label} before any recurrent operator")
            src.b, src.t = (self._atom_of(view, 0) or f"{src.id}[0]",
                            self._atom_of(view, 1) or f"{src.id}[1]")
        allowed = {src.b, src.t} if variant == "seq" else {src.b}
        if any(len(ax) > 1 or (ax and ax[0] not in allowed) for ax in axes[:-1]) \
                or len(axes) > 3:
            raise Refused(f"takes {src.label} laid out as {self.layout_of(view)}")
        fixed = view.fixes()  # the batch and time atoms stay, of size 1 or not
        lead = [tuple(a for a in ax if a in allowed and a not in fixed) for ax in view.axes[:-1]]
        return (src.id, variant), lead

    def _bias(self, node, ins):
        k = [i for i, v in enumerate(ins) if isinstance(v, View)]
        other = ins[1 - k[0]] if len(k) == 1 and len(ins) == 2 else None
        tensor = node.input[k[0]] if k else ""
        if not isinstance(other, Const) or tensor not in self.fresh \
                or self.denses[self.fresh[tensor]].b is not None or self.consumers[tensor] != 1:
            raise Refused(f"adds to {self.describe(ins[k[0]] if k else None)}; only a bias "
                          "(a constant) right after MatMul or Gemm is understood")
        old = self.denses[self.fresh[tensor]]
        self.denses.append(replace(old, b=_bias(other.array, old.W.shape[0])))
        return self._retag(node, ins[k[0]])

    def _activation(self, node, view, attrs):
        tensor = node.input[0]
        if tensor not in self.fresh or self.consumers[tensor] != 1 \
                or self.denses[self.fresh[tensor]].activation != "linear":
            raise Refused(f"applies {node.op_type} to {self.describe(view)}; a spec applies "
                          "activations in dense layers only (after MatMul/Gemm and its bias)")
        if node.op_type == "Softmax":
            rank = len(view.axes)
            axis = attrs.get("axis", -1 if self.opset >= 13 else 1) % rank
            if axis != rank - 1:
                raise Refused(f"normalises over axis {axis}; a dense softmax is over features, "
                              "the last axis")
        old = self.denses[self.fresh[tensor]]
        self.denses.append(replace(old, activation=ACTIVATIONS[node.op_type]))
        return self._retag(node, view)

    def _retag(self, node, view: View) -> View:
        """The same head, a new record (with its bias or activation): a new source."""
        k = len(self.denses) - 1
        old = self.sources[view.source]
        self.denses[k].out = f"dense{k}"
        self.order.append(("dense", k))
        self.fresh[node.output[0]] = k
        name = node.name or node.output[0]
        self.sources[f"dense{k}"] = replace(old, id=f"dense{k}", owner=k,
                                            label=f"{node.op_type} '{name}'")
        return View(f"dense{k}", view.axes, view.fixed)

    def output_ref(self, view) -> tuple:
        """What a graph output is: (a reference (source id, variant), its layout)."""
        if not isinstance(view, View):
            raise Refused(f"is {self.describe(view)}, not computed from the graph input by "
                          "recurrent operators and dense heads")
        src = self.sources[view.source]
        variant = self._plain(view, "keeps one step or one direction of", "value", True)
        if src.kind == "input":
            raise Refused(f"is {src.label} itself")
        return (src.id, variant), self.layout_of(view)


def _bias(array, units: int) -> np.ndarray:
    array = np.asarray(array)
    if array.size == 1:
        return np.full(units, array.reshape(()), dtype=array.dtype)
    if array.size != units or array.shape[-1] != units:
        raise Refused(f"its bias has shape {list(array.shape)}, not [{units}]")
    return array.reshape(units).copy()


def _activations(op: str, given, dirs: int) -> tuple:
    """Our activations for an operator's ``activations`` (None: the defaults), the same
    for both directions."""
    if given is None:
        return DEFAULTS[RECURRENT[op]]
    names = [a.decode() if isinstance(a, bytes) else a for a in given]
    per = len(ROLES[op].split(","))
    if len(names) != per * dirs:
        raise Refused(f"activations {names}: the {op} operator takes {per} per direction "
                      f"({ROLES[op]}), {per * dirs} here")
    for function in names:
        if function.lower() not in CELL_FUNCTIONS:
            raise Refused(f"activations {names}: "
                          + unsupported(function, ("Sigmoid", "Tanh", "Relu")))
    if [n.lower() for n in names[:per]] != [n.lower() for n in names[per:]] and dirs == 2:
        raise Refused(f"activations {names}: its directions differ (forward {names[:per]}, "
                      f"backward {names[per:]}); a spec's bidirectional layer runs one cell "
                      "both ways")
    return tuple(CELL_FUNCTIONS[n.lower()] for n in names[:per])
