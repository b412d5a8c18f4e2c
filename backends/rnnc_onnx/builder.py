"""A small helper for writing ONNX graphs: nodes with fresh output names, constants,
initializers, and nested builders for loop bodies (which may read outer names)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
DTYPES = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}


class OnnxBuilder:
    def __init__(self, dtype: str, prefix: str = ""):
        self.dtype = dtype
        self.np_dtype = np.dtype(dtype)
        self.onnx_dtype = DTYPES[dtype]
        self.prefix = prefix
        self.nodes: list = []
        self.initializers: list = []
        self.count = 0
        self.constants: dict = {}

    def fresh(self, hint: str = "t") -> str:
        """A new tensor name; the ':' keeps it apart from every name a spec can give."""
        self.count += 1
        return f"{self.prefix}{hint}:{self.count}"

    def op(self, op_type: str, inputs, hint: str | None = None, outputs: int = 1,
           name: str | None = None, **attrs):
        """Add a node; returns its output name (or names, when ``outputs`` > 1)."""
        names = [name] if name and outputs == 1 else \
            [self.fresh(hint or op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names,
                                           name=self.fresh(op_type), **attrs))
        return names[0] if outputs == 1 else names

    def constant(self, value, dtype=None) -> str:
        """A constant tensor (in the model's float dtype unless ``dtype`` says otherwise)."""
        array = np.asarray(value, dtype=dtype or self.np_dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self.constants:
            self.constants[key] = self.op("Constant", [], hint="const",
                                          value=numpy_helper.from_array(array))
        return self.constants[key]

    def ints(self, values) -> str:
        return self.constant(np.asarray(values, dtype=np.int64), np.int64)

    def initializer(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(array, self.np_dtype), name))
        return name

    def value_info(self, name: str, shape, dtype=None):
        return helper.make_tensor_value_info(name, dtype or self.onnx_dtype, list(shape))

    def child(self, prefix: str) -> OnnxBuilder:
        """A builder for a subgraph (a loop body); names stay unique in the model."""
        body = OnnxBuilder(self.dtype, prefix)
        body.constants = {}
        return body

    def graph(self, name: str, inputs: list, outputs: list, doc: str = "") -> onnx.GraphProto:
        return helper.make_graph(self.nodes, name, inputs, outputs, self.initializers,
                                 doc_string=doc)
