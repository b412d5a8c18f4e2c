"""The walk of ``rnnc import --from onnx``: each node of an ONNX graph that a graph output
needs, in graph order, is given a meaning (rnncompiler/import_onnx_values.py) instead of
being run. Recurrent operators and dense heads become records
(rnncompiler/import_onnx_layers.py); plumbing that only re-lays out a tracked tensor
(Identity, Transpose, Reshape, Squeeze, Unsqueeze, Flatten, Gather, Slice, Concat, Cast,
inference Dropout) is followed, and so are the shape computations and the zero initial
states exporters write. Anything else on the way is refused, naming the node.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator

from .onnx_layers import ACTIVATIONS, RECURRENT, Dense, Layers, Recurrent, Source
from .onnx_values import (
    ONE,
    Const,
    Dims,
    Other,
    Refused,
    Space,
    Stack,
    View,
    Zeros,
    dims_op,
    failure,
    is_zero,
    mono,
    pick,
    product,
)

PASS = ("Identity", "Cast", "Dropout")
LAYOUT = ("Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Gather", "Slice",
          "Concat", "Expand", "Tile") + PASS
UNDERSTOOD = ("rnnc import maps RNN/LSTM/GRU operators, dense heads (Gemm, or MatMul and "
              "Add, then Tanh, Sigmoid, Relu or Softmax) and the re-layouts between them "
              "(Transpose, Reshape, Squeeze, Unsqueeze, Gather, Slice, Concat, Identity)")


class Walker(Layers):
    def __init__(self, model: onnx.ModelProto, path: str):
        self.path, graph = path, model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                          1)
        self.space = Space()
        self.sources: dict[str, Source] = {}
        self.rnns: list[Recurrent] = []
        self.denses: list[Dense] = []
        self.fresh: dict[str, int] = {}  # tensor -> dense record it is the whole output of
        self.values: dict = {i.name: Const(numpy_helper.to_array(i)) for i in graph.initializer}
        self.inputs = [i.name for i in graph.input if i.name not in self.values]
        for i in graph.input:
            if i.name not in self.values:
                self.values[i.name] = self._graph_input(i)
        self.nodes = list(graph.node)
        self.producer = {out: k for k, n in enumerate(self.nodes) for out in n.output if out}
        self.consumers = Counter(i for n in self.nodes for i in n.input if i)
        self.consumers.update(o.name for o in graph.output)
        self.done: set[int] = set()
        self.order: list[tuple[str, int]] = []  # ("rnn" | "dense", k) as they were made

    # ------------------------------------------------------------------ driving
    def evaluate(self, tensor: str):
        """The meaning of ``tensor``, walking the nodes it needs, in graph order."""
        needed, todo = set(), [tensor]
        while todo:
            name = todo.pop()
            k = self.producer.get(name)
            if k is None or k in needed or k in self.done:
                if k is None and name not in self.values:
                    raise failure(self.path, f"tensor '{name}' is neither a graph input, an "
                                    "initializer nor a node's output")
                continue
            needed.add(k)
            todo.extend(i for i in self.nodes[k].input if i)
        for k in sorted(needed):
            self._node(self.nodes[k])
            self.done.add(k)
        return self.values[tensor]

    def _node(self, node) -> None:
        where = f"{node.op_type} node '{node.name or node.output[0]}'"
        if node.domain not in ("", "ai.onnx"):
            raise failure(self.path, f"{where}: operators of domain '{node.domain}' are not "
                          f"understood; {UNDERSTOOD}")
        ins = [self.values[i] if i else None for i in node.input]
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        try:
            outs = self._interpret(node, ins, attrs)
        except Refused as why:
            raise failure(self.path, f"{where}: {why}") from None
        except (IndexError, KeyError, TypeError, ValueError) as error:  # a malformed node
            raise failure(self.path, f"{where}: cannot be read ({type(error).__name__}: "
                                     f"{error})") from None
        for name, value in zip(node.output, outs):
            if name:
                self.values[name] = value

    def describe(self, value) -> str:
        if isinstance(value, View):
            return self.sources[value.source].label
        if isinstance(value, Stack):
            return " and ".join(self.sources[p.source].label for p in value.parts)
        if isinstance(value, Other):
            return value.origin
        return "a computed tensor"

    # ------------------------------------------------------------------ nodes
    def _interpret(self, node, ins, attrs) -> list:
        op = node.op_type
        if op == "Constant":
            return [Const(_constant(attrs))]
        if op in RECURRENT:
            return self._recurrent(node, ins, attrs)
        tracked = [v for v in ins if isinstance(v, (View, Stack))]
        if not tracked:
            return [self._untracked(node, ins, attrs)] * max(1, len(node.output))
        if op == "Shape":
            return [self._shape(ins[0], attrs)]
        if (op in LAYOUT and tracked[0] is ins[0]) or op == "Concat":
            return [self._layout(node, ins, attrs)] + [Other(node.op_type)] * (len(node.output) - 1)
        if op in ("Gemm", "MatMul"):
            return [self._dense_op(node, ins, attrs)]
        if op == "Add":
            return [self._bias(node, ins)]
        if op in ACTIVATIONS:
            return [self._activation(node, ins[0], attrs)]
        raise Refused(f"applies {op} to {self.describe(tracked[0])}; {UNDERSTOOD}")

    def _untracked(self, node, ins, attrs):
        """A node on constants, shapes or zeros."""
        op = node.op_type
        if all(isinstance(v, Const) or v is None for v in ins) and op != "ConstantOfShape":
            return Const(self._fold(node, ins))
        if op == "ConstantOfShape":
            value = attrs.get("value")
            if value is None or not np.any(numpy_helper.to_array(value)):
                return Zeros()
            return Other(f"ConstantOfShape '{node.name or node.output[0]}' fills "
                         f"{numpy_helper.to_array(value)}")
        first = ins[0] if ins else None
        if op in LAYOUT and (is_zero(first) or (op == "Concat" and all(is_zero(v) for v in ins))):
            return Zeros()
        if op == "Shape":
            return Dims(None) if not isinstance(first, Const) else Const(self._fold(node, ins))
        if any(isinstance(v, Dims) for v in ins):
            return dims_op(op, ins, attrs, self.opset)
        return Other(f"{op} '{node.name or node.output[0]}'")

    def _fold(self, node, ins) -> np.ndarray:
        feeds = {name: v.array for name, v in zip(node.input, ins) if name}
        size = _folded_size(node.op_type, [v.array if v is not None else None for v in ins])
        if size > MAX_FOLDED:
            raise Refused(f"would make a constant of {size:,} values (at most {MAX_FOLDED:,} "
                          "are folded)")
        try:
            return np.asarray(ReferenceEvaluator(node, opsets={"": self.opset}).run(None, feeds)[0])
        except Exception as error:  # onnx.reference raises many kinds
            raise Refused(f"cannot be evaluated on its constant inputs: {error}") from None

    def _shape(self, view, attrs):
        if isinstance(view, Stack):
            raise Refused(f"takes the shape of {self.describe(view)}")
        dims = self.space.dims(view)
        start, end = attrs.get("start", 0), attrs.get("end", len(dims))
        return Dims(tuple(dims[slice(start, end)]))

    def _layout(self, node, ins, attrs):
        op, value, space = node.op_type, ins[0], self.space
        if op == "Dropout":
            training = ins[2] if len(ins) > 2 else None
            if (training is not None and not (isinstance(training, Const)
                                              and not training.array.any())) \
                    or attrs.get("is_test", 1) == 0:
                raise Refused("is in training mode (random); export the model in eval mode")
            return value
        if op in ("Identity", "Cast"):
            if op == "Cast" and attrs.get("to") not in (1, 10, 11, 16):
                raise Refused(f"casts {self.describe(value)} to a non-float type")
            return value
        if op == "Concat":
            parts = [v for v in ins if v is not None]
            if not all(isinstance(v, View) for v in parts):
                raise Refused(f"concatenates {self.describe(parts[0])} with tensors rnnc import "
                              "does not track")
            return space.concat(parts, attrs["axis"])
        axes = attrs.get("axes")
        if op in ("Squeeze", "Unsqueeze") and len(ins) > 1 and ins[1] is not None:
            axes = [int(a) for a in self._ints(ins[1], "axes")]
        if op in ("Gather", "Slice") and isinstance(value, Stack):
            return self._pick(value, node, ins, attrs)
        if isinstance(value, Stack):
            raise Refused(f"applies {op} to {self.describe(value)}, concatenated; only picking "
                          "one of them again is understood")
        if op == "Transpose":
            return space.transpose(value, attrs.get("perm"))
        if op == "Reshape":
            return space.reshape(value, self._target(ins[1]), attrs.get("allowzero", 0))
        if op == "Flatten":
            axis = attrs.get("axis", 1) % (len(value.axes) + 1)
            dims = space.dims(value)
            return space.reshape(value, [product(dims[:axis]), product(dims[axis:])])
        if op == "Squeeze":
            return space.squeeze(value, axes)
        if op == "Unsqueeze":
            return space.unsqueeze(value, axes)
        if op == "Gather":
            index = self._ints(ins[1], "indices")
            if index.size != 1:
                raise Refused("gathers several indices; one step or one direction is understood")
            return self._final(space.fix(value, attrs.get("axis", 0), int(index.reshape(-1)[0]),
                                         keep_axis=index.ndim > 0))
        if op == "Slice":
            for start, end, axis, step in self._slices(node, ins, attrs, len(value.axes)):
                value = space.slice(value, start, end, axis, step)
            return self._final(value)
        raise Refused(f"{op}s {self.describe(value)}; {UNDERSTOOD}")

    def _final(self, view: View) -> View:
        """One direction of Y at the step where it ends (the last step forward, the first
        backward) is that direction of Y_h."""
        src = self.sources[view.source]
        fixes = view.fixes()
        if src.kind != "seq" or src.t not in fixes:
            return view
        record, d = self.rnns[src.owner], src.feat[0]
        if self.space.sizes[d] != ONE and d not in fixes:
            return view
        backward = record.direction == "backward" or fixes.get(d) == 1
        index = fixes[src.t]
        if not (index == 0 if backward else self.space.is_last(src.t, index)):
            return view
        return View(record.y_h, tuple(tuple(a for a in ax if a != src.t) for ax in view.axes),
                    tuple((a, i) for a, i in view.fixed if a != src.t))

    def _pick(self, stack, node, ins, attrs):
        if node.op_type == "Gather":
            index = self._ints(ins[1], "indices")
            if index.size != 1 or self.space._axis(stack.parts[0], attrs.get("axis", 0)) \
                    != stack.axis:
                raise Refused(f"gathers from {self.describe(stack)} other than one of them")
            return pick(stack, self.space, int(index.reshape(-1)[0]), index.ndim > 0)
        slices = self._slices(node, ins, attrs, len(stack.parts[0].axes))
        if len(slices) != 1 or slices[0][3] != 1 or slices[0][2] % len(stack.parts[0].axes) \
                != stack.axis:
            raise Refused(f"slices {self.describe(stack)} other than to pick one of them")
        start, end = slices[0][:2]
        total = sum(self.space.dims(p)[stack.axis][0] for p in stack.parts)
        first, stop, _ = slice(start, end).indices(total)
        if stop - first != 1:
            raise Refused(f"slices {first}:{stop} of {self.describe(stack)}; one is understood")
        return pick(stack, self.space, first, keep_axis=True)

    def _slices(self, node, ins, attrs, rank) -> list:
        if self.opset < 10 and "starts" in attrs:
            starts, ends = attrs["starts"], attrs["ends"]
            axes = attrs.get("axes", list(range(len(starts))))
            steps = [1] * len(starts)
        else:
            starts, ends = (list(self._ints(ins[k], name)) for k, name in
                            ((1, "starts"), (2, "ends")))
            axes = list(self._ints(ins[3], "axes")) if len(ins) > 3 and ins[3] is not None \
                else list(range(len(starts)))
            steps = list(self._ints(ins[4], "steps")) if len(ins) > 4 and ins[4] is not None \
                else [1] * len(starts)
        return [(int(s), int(e), int(a), int(st)) for s, e, a, st in zip(starts, ends, axes, steps)]

    def _ints(self, value, what) -> np.ndarray:
        if isinstance(value, Const):
            return np.asarray(value.array).astype(np.int64)
        if isinstance(value, Dims) and value.values is not None \
                and all(v is not None and not v[1] for v in value.values):
            return np.array([v[0] for v in value.values]).reshape(() if value.scalar else -1)
        raise Refused(f"its {what} are computed at run time; rnnc import needs them constant")

    def _target(self, value) -> list:
        if isinstance(value, Const):
            return [mono(v) for v in np.asarray(value.array).reshape(-1)]
        if isinstance(value, Dims) and value.values is not None:
            return list(value.values)
        raise Refused("reshapes to a shape rnnc import cannot follow")

    # ------------------------------------------------------------------ meaning
    def _graph_input(self, info):
        name = info.name
        shape = info.type.tensor_type.shape if info.type.HasField("tensor_type") else None
        dims = list(shape.dim) if shape is not None and info.type.tensor_type.HasField("shape") \
            else None
        if dims is not None and len(dims) != 3:
            return Other(f"graph input '{name}' of rank {len(dims)}")
        atoms = []
        for k in range(3):
            d = dims[k] if dims is not None else None
            size = mono(d.dim_value) if d is not None and d.HasField("dim_value") \
                else (1, (f"{name}[{k}]",))
            atoms.append(self.space.add(f"{name}[{k}]", size))
        self.sources[name] = Source(name, "input", (atoms[2],), None, None,
                                    f"graph input '{name}'")
        return View(name, tuple((a,) for a in atoms))


def _constant(attrs) -> np.ndarray:
    if "value" in attrs:
        return numpy_helper.to_array(attrs["value"])
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if key in attrs:
            return np.asarray(attrs[key], dtype=dtype)
    raise Refused(f"holds {', '.join(attrs)}, not a tensor rnnc import reads")


MAX_FOLDED = 1 << 24  # values a constant the walk folds may have: a model cannot exhaust memory


def _folded_size(op: str, arrays: list) -> int:
    """How many values folding ``op`` on these constants makes, where the op can make far
    more than its inputs hold (Expand, Tile, Range); else 0."""
    try:
        if op == "Expand" and len(arrays) == 2:
            shape = np.broadcast_shapes(np.shape(arrays[0]), tuple(int(d) for d in arrays[1]))
            return int(np.prod(shape, dtype=np.float64))
        if op == "Tile" and len(arrays) == 2:
            return int(np.size(arrays[0]) * np.prod(np.asarray(arrays[1], np.float64)))
        if op == "Range" and len(arrays) == 3:
            start, limit, delta = (float(np.asarray(a).reshape(-1)[0]) for a in arrays)
            return int(max(0.0, np.ceil((limit - start) / delta))) if delta else 0
    except (ValueError, TypeError, OverflowError, IndexError):
        return 0  # malformed: the fold itself says so
    return 0
