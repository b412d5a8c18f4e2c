"""Parameters in other frameworks' layouts: PyTorch, Keras, ONNX (``rnnc export-params``,
``rnnc import-params``).

Every framework stacks a cell's gates into one matrix, each in its own order, and keeps
its biases its own way. The table below is the one the code follows (docs/interop.md):
per cell and framework, the gate blocks in the framework's order, each as (input weight,
recurrent weight, input-side bias, recurrent-side bias) of the built-in cells' parameter
names (docs/spec.md, Built-in cells); None is a block of zeros.

- simple: one block everywhere.
- lstm: PyTorch i, f, c (its g), o; Keras i, f, c, o; ONNX i, o, f, c.
- gru (reset after): PyTorch r, z, n with b_hn in bias_hh; Keras z, r, h, `reset_after`,
  bias (2, 3H); ONNX z, r, h, `linear_before_reset=1`, b_hn in Rb.
- gru_reset_before: none in PyTorch; Keras z, r, h, `reset_after=False`, bias (3H,);
  ONNX z, r, h, `linear_before_reset=0`.

Keras keeps kernels transposed ([input, gates*H]). Which cell a layer has is read from
its parameter names, so a parameter file alone is enough.

An embedding layer's table ``<layer>.W`` [classes, units] is laid out alike everywhere:
Keras ``<layer>/embeddings`` (``Embedding``'s variable), PyTorch and ONNX
``<layer>.weight`` (``nn.Embedding``'s; ONNX's Gather reads it as it is).
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import RnncError

LSTM = [("W_xi", "W_hi", "b_i", None), ("W_xf", "W_hf", "b_f", None),
        ("W_xc", "W_hc", "b_c", None), ("W_xo", "W_ho", "b_o", None)]
GRU_Z, GRU_R = ("W_xz", "W_hz", "b_z", None), ("W_xr", "W_hr", "b_r", None)
SIMPLE = [("W_xh", "W_hh", "b_h", None)]
BLOCKS = {
    "torch": {"simple": SIMPLE, "lstm": LSTM,
              "gru": [GRU_R, GRU_Z, ("W_xn", "W_hn", "b_xn", "b_hn")]},
    "keras": {"simple": SIMPLE, "lstm": LSTM,
              "gru": [GRU_Z, GRU_R, ("W_xn", "W_hn", "b_xn", "b_hn")],
              "gru_reset_before": [GRU_Z, GRU_R, ("W_xn", "W_hn", "b_n", None)]},
    "onnx": {"simple": SIMPLE, "lstm": [LSTM[0], LSTM[3], LSTM[1], LSTM[2]],
             "gru": [GRU_Z, GRU_R, ("W_xn", "W_hn", "b_xn", "b_hn")],
             "gru_reset_before": [GRU_Z, GRU_R, ("W_xn", "W_hn", "b_n", None)]},
}
FORMATS = tuple(BLOCKS)
# a recurrent weight or bias of a PyTorch state_dict: rnn.weight_ih_l0, weight_hh_l1_reverse
RECURRENT = re.compile(r"^(?P<module>.*?)\.?(?P<kind>weight_ih|weight_hh|bias_ih|bias_hh)_l"
                       r"(?P<layer>\d+)(?P<reverse>_reverse)?$")
CELL_OF = {frozenset(name for block in blocks for name in block if name): cell
           for cell, blocks in BLOCKS["onnx"].items()}
OTHER = {frozenset({"W", "b"}): "dense", frozenset({"W"}): "embedding"}  # by their names
PEEPHOLES = frozenset({"p_i", "p_f", "p_o"})  # an LSTM's peepholes (specs/peephole.yaml)
ONNX_PEEPHOLES = ("i", "o", "f")  # the order of ONNX LSTM's P


def infer_layout(arrays: dict) -> str | None:
    """Whose layout ``arrays`` are in, told by their names: Keras's have '/' (``rnn/kernel``),
    PyTorch's ``weight_ih_l0``, ONNX's a recurrent ``.R``; None when the names do not say
    (dense layers alone are named alike by PyTorch and ONNX)."""
    keys = list(arrays)
    if any("/" in key for key in keys):
        return "keras"
    if any(RECURRENT.match(key) for key in keys):
        return "torch"
    if any(key.endswith(".R") for key in keys):
        return "onnx"
    return None


def layers_of(params: dict) -> dict[str, dict]:
    """layer -> {"cell": ..., "directions": {tag: {name: array}}} for recurrent layers,
    {"cell": "dense", ...} for dense ones; from the parameter names alone."""
    grouped: dict[str, dict[str, dict]] = {}
    for key, value in params.items():
        parts = key.split(".")
        if len(parts) == 2:
            layer, tag, name = parts[0], "", parts[1]
        elif len(parts) == 3 and parts[1] in ("fwd", "bwd"):
            layer, tag, name = parts
        else:
            raise RnncError(f"parameter '{key}' is not named as docs/spec.md says "
                            "(<layer>.<param> or <layer>.fwd|bwd.<param>)")
        grouped.setdefault(layer, {}).setdefault(tag, {})[name] = np.asarray(value)
    layers = {}
    for layer, directions in grouped.items():
        names = frozenset(next(iter(directions.values())))
        peepholes = PEEPHOLES <= names and CELL_OF.get(names - PEEPHOLES) == "lstm"
        cell = OTHER.get(names) or (CELL_OF.get(names - PEEPHOLES) if peepholes
                                    else CELL_OF.get(names))
        if cell is None:
            raise RnncError(f"layer {layer}: parameters {', '.join(sorted(names))} are not "
                            "those of a built-in cell (simple, lstm, gru, gru_reset_before), "
                            "a dense or an embedding layer; a custom cell has no other "
                            "framework's layout")
        layers[layer] = {"cell": cell, "directions": directions, "peepholes": peepholes}
    return layers


def _peepholes(info: dict, layer: str, framework: str) -> bool:
    """Whether the layer is an LSTM with peepholes (p_i, p_f, p_o; the
    cell of specs/peephole.yaml): only ONNX's LSTM has them (its ``P``, gates i, o, f)."""
    if info.get("peepholes") and framework != "onnx":
        raise RnncError(f"layer {layer}: an LSTM with peepholes has no {framework} layout "
                        "(only ONNX's LSTM takes them, as P)")
    return bool(info.get("peepholes"))


def export_params(params: dict, to: str) -> dict[str, np.ndarray]:
    """Our parameters in the layout of ``to`` (torch, keras or onnx)."""
    out = {}
    for layer, info in layers_of(params).items():
        cell, directions = info["cell"], info["directions"]
        if cell == "embedding":
            key = f"{layer}/embeddings" if to == "keras" else f"{layer}.weight"
            out[key] = directions[""]["W"]
            continue
        if cell == "dense":
            w, b = directions[""]["W"], directions[""]["b"]
            if to == "keras":
                out[f"{layer}/kernel"], out[f"{layer}/bias"] = w.T.copy(), b
            else:
                out[f"{layer}.weight"], out[f"{layer}.bias"] = w, b
            continue
        peepholes = _peepholes(info, layer, to)
        blocks = _blocks(to, cell, layer)
        packed = {tag: _pack(blocks, p) for tag, p in directions.items()}
        if to == "torch":
            for tag, (w, r, wb, rb) in packed.items():
                suffix = "_reverse" if tag == "bwd" else ""
                names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                out.update({f"{layer}.{name}_l0{suffix}": value
                            for name, value in zip(names, (w, r, wb, rb))})
        elif to == "keras":
            for tag, (w, r, wb, rb) in packed.items():
                where = {"": layer, "fwd": f"{layer}/forward", "bwd": f"{layer}/backward"}[tag]
                out[f"{where}/kernel"], out[f"{where}/recurrent_kernel"] = w.T.copy(), r.T.copy()
                out[f"{where}/bias"] = np.stack([wb, rb]) if cell == "gru" else wb + rb
        else:
            tags = [t for t in ("", "fwd", "bwd") if t in packed]
            out[f"{layer}.W"] = np.stack([packed[t][0] for t in tags])
            out[f"{layer}.R"] = np.stack([packed[t][1] for t in tags])
            out[f"{layer}.B"] = np.stack([np.concatenate(packed[t][2:]) for t in tags])
            if peepholes:
                out[f"{layer}.P"] = np.stack([np.concatenate(
                    [directions[t][f"p_{g}"] for g in ONNX_PEEPHOLES]) for t in tags])
    return out


def import_params(arrays: dict, layout: dict, frm: str) -> dict[str, np.ndarray]:
    """``arrays`` in ``frm``'s layout -> our parameters; ``layout`` is what
    ``layers_of`` says of the parameters wanted (names, cells, shapes)."""
    out = {}
    for layer, info in layout.items():
        cell, directions = info["cell"], info["directions"]
        if cell == "embedding":
            key = f"{layer}/embeddings" if frm == "keras" else f"{layer}.weight"
            out[f"{layer}.W"] = np.array(_get(arrays, key))
            continue
        if cell == "dense":
            if frm == "keras":
                w, b = _get(arrays, f"{layer}/kernel").T, _get(arrays, f"{layer}/bias")
            else:
                w, b = _get(arrays, f"{layer}.weight"), _get(arrays, f"{layer}.bias")
            out[f"{layer}.W"], out[f"{layer}.b"] = np.array(w), np.array(b)
            continue
        peepholes = _peepholes(info, layer, frm)
        blocks = _blocks(frm, cell, layer)
        for index, tag in enumerate(t for t in ("", "fwd", "bwd") if t in directions):
            if frm == "torch":
                suffix = "_reverse" if tag == "bwd" else ""
                w, r, wb, rb = (_get(arrays, f"{layer}.{name}_l0{suffix}") for name in
                                ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            elif frm == "keras":
                where = {"": layer, "fwd": f"{layer}/forward", "bwd": f"{layer}/backward"}[tag]
                w = _get(arrays, f"{where}/kernel").T
                r = _get(arrays, f"{where}/recurrent_kernel").T
                bias = _get(arrays, f"{where}/bias")
                wb, rb = (bias[0], bias[1]) if bias.ndim == 2 else (bias, np.zeros_like(bias))
            else:
                w, r = _get(arrays, f"{layer}.W")[index], _get(arrays, f"{layer}.R")[index]
                wb, rb = np.split(_get(arrays, f"{layer}.B")[index], 2)
            prefix = f"{layer}.{tag}." if tag else f"{layer}."
            out.update({prefix + k: v for k, v in _unpack(blocks, w, r, wb, rb).items()})
            if peepholes:
                parts = np.split(_get(arrays, f"{layer}.P")[index], len(ONNX_PEEPHOLES))
                out.update({f"{prefix}p_{g}": part.copy()
                            for g, part in zip(ONNX_PEEPHOLES, parts)})
    return out


def _blocks(framework: str, cell: str, layer: str) -> list:
    if framework not in BLOCKS:
        raise RnncError(f"unknown layout '{framework}'; use {', '.join(FORMATS)}")
    if cell not in BLOCKS[framework]:
        raise RnncError(f"layer {layer}: PyTorch has no {cell} cell (its GRU resets after "
                        "the product: use cell gru)")
    return BLOCKS[framework][cell]


def _pack(blocks, p: dict):
    """(W [G*H, I], R [G*H, H], input-side bias [G*H], recurrent-side bias [G*H])."""
    zero = np.zeros_like(p[blocks[0][2]])
    w = np.concatenate([p[wx] for wx, _, _, _ in blocks])
    r = np.concatenate([p[wh] for _, wh, _, _ in blocks])
    wb = np.concatenate([p[b] if b else zero for _, _, b, _ in blocks])
    rb = np.concatenate([p[b] if b else zero for _, _, _, b in blocks])
    return w, r, wb, rb


def _unpack(blocks, w, r, wb, rb) -> dict:
    """The inverse of ``_pack``; a bias the cell has once but a framework twice (PyTorch's
    GRU r and z) is their sum."""
    gates = len(blocks)
    out: dict[str, np.ndarray] = {}
    for (wx, wh, bx, bh), w_g, r_g, wb_g, rb_g in zip(
            blocks, np.split(np.asarray(w), gates), np.split(np.asarray(r), gates),
            np.split(np.asarray(wb), gates), np.split(np.asarray(rb), gates)):
        out[wx], out[wh] = w_g.copy(), r_g.copy()
        if bh is None:
            out[bx] = wb_g + rb_g  # one bias in the cell: the two sides add
        else:
            out[bx], out[bh] = wb_g.copy(), rb_g.copy()
    return out


def _get(arrays: dict, key: str) -> np.ndarray:
    if key not in arrays:
        raise RnncError(f"missing array '{key}'")
    return np.asarray(arrays[key])
