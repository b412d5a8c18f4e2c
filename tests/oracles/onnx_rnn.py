"""An independent forward oracle: one ONNX RNN / LSTM / GRU node, run by onnxruntime.

Parameters are named as docs/spec.md's Built-in cells (no layer prefix) and converted here to
ONNX's packed layout:

* gate order: LSTM i, o, f, c; GRU z, r, h (h is the spec's n); RNN has one "gate";
* W [num_dir, gates*H, I], R [num_dir, gates*H, H], B [num_dir, 2*gates*H] = [Wb, Rb];
* gru (reset after) is ``linear_before_reset=1`` with b_xn -> Wbh and b_hn -> Rbh;
  gru_reset_before is ``linear_before_reset=0`` with b_n -> Wbh (Rbh = 0);
* layout 0: X [T, B, I], Y [T, num_dir, B, H], Y_h / Y_c [num_dir, B, H];
* LSTM peepholes P [num_dir, 3*H] in order i, o, f.

dtypes: onnxruntime 1.32's CPU kernels for RNN, LSTM and GRU exist for float32 only
(RNN has no double kernel at all; LSTM/GRU fail at run time with "does not support
double yet").  ``engine="reference"`` runs the same model on
``onnx.reference.ReferenceEvaluator`` (pure NumPy), which handles float32 and float64.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

OPSET = 17

# cell -> ONNX op, and per ONNX gate (in ONNX order): (x weight, h weight, Wb, Rb).
# A bias of None is zero.
_OP = {"simple": "RNN", "lstm": "LSTM", "gru": "GRU", "gru_reset_before": "GRU"}
_GATES = {
    "simple": [("W_xh", "W_hh", "b_h", None)],
    "lstm": [
        ("W_xi", "W_hi", "b_i", None),
        ("W_xo", "W_ho", "b_o", None),
        ("W_xf", "W_hf", "b_f", None),
        ("W_xc", "W_hc", "b_c", None),
    ],
    "gru": [
        ("W_xz", "W_hz", "b_z", None),
        ("W_xr", "W_hr", "b_r", None),
        ("W_xn", "W_hn", "b_xn", "b_hn"),
    ],
    "gru_reset_before": [
        ("W_xz", "W_hz", "b_z", None),
        ("W_xr", "W_hr", "b_r", None),
        ("W_xn", "W_hn", "b_n", None),
    ],
}
_PEEPHOLE_ORDER = ("p_i", "p_o", "p_f")
_ONNX_DIRECTION = {"forward": "forward", "backward": "reverse", "bidirectional": "bidirectional"}
_TENSOR_TYPE = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}


def _state_names(cell):
    return ["h", "c"] if cell == "lstm" else ["h"]


def _pack(cell, p, dtype):
    """One direction's parameters, named as in the spec -> ONNX (W [G*H, I], R [G*H, H],
    B [2*G*H])."""
    gates = _GATES[cell]
    hidden = p[gates[0][1]].shape[0]
    zero = np.zeros(hidden, dtype)

    def bias(name):
        return zero if name is None else np.asarray(p[name], dtype)

    W = np.concatenate([np.asarray(p[wx], dtype) for wx, _, _, _ in gates])
    R = np.concatenate([np.asarray(p[wh], dtype) for _, wh, _, _ in gates])
    B = np.concatenate([bias(wb) for _, _, wb, _ in gates] + [bias(rb) for _, _, _, rb in gates])
    return W, R, B


def build_model(cell, params, x, *, direction="forward", initial=None, peepholes=None,
                use_bias=True):
    """The one-node model and its feeds; arguments as ``onnx_rnn_forward``."""
    if cell not in _OP:
        raise ValueError(f"unknown cell {cell!r}")
    if direction not in _ONNX_DIRECTION:
        raise ValueError(f"unknown direction {direction!r}")
    num_dir = 2 if direction == "bidirectional" else 1
    if len(params) != num_dir:
        raise ValueError(f"direction {direction!r} needs {num_dir} parameter dicts, "
                         f"got {len(params)}")
    if peepholes is not None and cell != "lstm":
        raise ValueError("peepholes exist for the lstm cell only")
    x = np.asarray(x)
    dtype = x.dtype
    if dtype not in _TENSOR_TYPE:
        raise TypeError(f"x must be float32 or float64, not {dtype}")
    batch, steps, _ = x.shape

    packed = [_pack(cell, p, dtype) for p in params]
    hidden = packed[0][1].shape[-1]
    feeds = {
        "X": np.ascontiguousarray(x.transpose(1, 0, 2)),  # layout 0: [T, B, I]
        "W": np.stack([w for w, _, _ in packed]),
        "R": np.stack([r for _, r, _ in packed]),
    }
    if use_bias:
        feeds["B"] = np.stack([b for _, _, b in packed])
    if initial is not None:
        for s in _state_names(cell):
            feeds[f"initial_{s}"] = np.stack(
                [np.asarray(d.get(s, np.zeros((batch, hidden))), dtype) for d in initial])
    if peepholes is not None:
        feeds["P"] = np.stack(
            [np.concatenate([np.asarray(d[k], dtype) for k in _PEEPHOLE_ORDER]) for d in peepholes])

    # Positional inputs of the op; "" marks an omitted optional input.
    slots = ["X", "W", "R", "B", "sequence_lens", "initial_h"]
    if cell == "lstm":
        slots += ["initial_c", "P"]
    node_inputs = [n if n in feeds else "" for n in slots]
    while node_inputs[-1] == "":
        node_inputs.pop()
    outputs = ["Y"] + [f"Y_{s}" for s in _state_names(cell)]

    attrs = {"hidden_size": hidden, "direction": _ONNX_DIRECTION[direction]}
    if cell.startswith("gru"):
        attrs["linear_before_reset"] = 1 if cell == "gru" else 0
    node = helper.make_node(_OP[cell], node_inputs, outputs, **attrs)

    elem = _TENSOR_TYPE[dtype]
    out_shapes = {"Y": [steps, num_dir, batch, hidden]}
    out_shapes.update({o: [num_dir, batch, hidden] for o in outputs[1:]})
    graph = helper.make_graph(
        [node], f"oracle_{cell}",
        [helper.make_tensor_value_info(n, elem, v.shape) for n, v in feeds.items()],
        [helper.make_tensor_value_info(o, elem, out_shapes[o]) for o in outputs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model, full_check=True)
    return model, feeds


def run_model(model, feeds, engine="onnxruntime"):
    """Run a model; returns its outputs as a dict name -> array."""
    names = [o.name for o in model.graph.output]
    if engine == "reference":
        from onnx.reference import ReferenceEvaluator

        results = ReferenceEvaluator(model).run(None, feeds)
    elif engine == "onnxruntime":
        import onnxruntime as ort

        if feeds["X"].dtype != np.float32:
            raise TypeError("onnxruntime's RNN/LSTM/GRU kernels support float32 only; "
                            "use engine='reference' for float64")
        session = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        results = session.run(names, feeds)
    else:
        raise ValueError(f"unknown engine {engine!r}")
    return dict(zip(names, results))


def onnx_rnn_forward(cell, params, x, *, direction="forward", initial=None, peepholes=None,
                     use_bias=True, engine="onnxruntime"):
    """cell: 'simple'|'lstm'|'gru'|'gru_reset_before'; params: list of dicts, one per direction
    (1 for forward/backward, 2 [fwd, bwd] for bidirectional);
    x: [batch, steps, features] batch-first;
    initial: None or list (per direction) of dicts {'h': [B,H], 'c': [B,H]}
    (a missing key is zeros);
    peepholes: None or list (per direction) of dicts {'p_i','p_o','p_f'} each [H] (lstm only);
    use_bias=False omits the ONNX B input (the caller passes zero biases then).
    engine: 'onnxruntime' (float32 only) or 'reference' (onnx.reference, float32/float64).
    Returns {'Y': [B, T, num_dir*H] (fwd then bwd concatenated on features),
             'h': list of [B,H] per direction, 'c': same for lstm}."""
    model, feeds = build_model(cell, params, x, direction=direction, initial=initial,
                               peepholes=peepholes, use_bias=use_bias)
    res = run_model(model, feeds, engine)
    Y = res["Y"]  # [T, D, B, H] -> [B, T, D, H] -> [B, T, D*H]
    steps, num_dir, batch, hidden = Y.shape
    out = {"Y": Y.transpose(2, 0, 1, 3).reshape(batch, steps, num_dir * hidden)}
    for s in _state_names(cell):
        out[s] = list(res[f"Y_{s}"])
    return out
