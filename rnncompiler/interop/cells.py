"""Custom cells for ``rnnc import``: what a built-in cell does not compute, the importers
write as a custom cell (docs/spec.md, Built-in cells and Custom cells) whose equations are
the framework's own.

A generated cell is a built-in *base* cell (simple, lstm, gru, gru_reset_before) with
other activations, peepholes (ONNX LSTM's ``P``) or a coupled forget gate (ONNX LSTM's
``input_forget=1``: f = 1 - i, as onnxruntime computes it). Its parameters are the base
cell's plus p_i, p_f, p_o (less W_xf, W_hf, b_f and p_f where the forget gate is coupled), so the
weights map through ``interop.import_params`` as the base cell's; its name says what
differs (``simple_relu``, ``lstm_peephole``, ``gru_sigmoid_relu``): an identifier that
is no built-in's. Equations are written as specs/peephole.yaml writes them.

Activations, in the order each framework lists them: simple (f), lstm (f for the gates
i, f, o; g for the candidate; h for the output), gru and gru_reset_before (f for r, z; g
for the candidate n). ``linear`` applies nothing.
"""

from __future__ import annotations

import numpy as np

from ..frontend.cells import builtin_cells
from .layouts import CELL_OF, OTHER, PEEPHOLES, import_params

DEFAULTS = {"simple": ("tanh",), "lstm": ("sigmoid", "tanh", "tanh"),
            "gru": ("sigmoid", "tanh"), "gru_reset_before": ("sigmoid", "tanh")}
# what a generated cell applies; hard_sigmoid is Keras 3's, clip(x/6 + 0.5, 0, 1), written
# with the equation functions
FUNCTIONS = ("sigmoid", "tanh", "relu", "linear", "hard_sigmoid")
FORGET = frozenset({"W_xf", "W_hf", "b_f"})  # not in a cell whose forget gate is coupled


def generated_cell(base: str, activations=None, peepholes: bool = False,
                   input_forget: bool = False) -> tuple[str, str | None]:
    """(cell name, its YAML body under ``cells: <name>:``, indented by four), or
    (``base``, None) where the built-in cell computes it."""
    acts = tuple(activations or DEFAULTS[base])
    if len(acts) != len(DEFAULTS[base]) or any(a not in FUNCTIONS for a in acts):
        raise ValueError(f"activations {acts} for a {base} cell")
    input_forget = bool(input_forget) and base == "lstm"
    peepholes = bool(peepholes) and base == "lstm"
    if acts == DEFAULTS[base] and not peepholes and not input_forget:
        return base, None
    name = base + ("_" + "_".join(acts) if acts != DEFAULTS[base] else "") \
        + ("_peephole" if peepholes else "") + ("_coupled" if input_forget else "")
    params = []
    for param in builtin_cells()[base].params.values():
        if input_forget and param.name in FORGET:
            continue
        shape = f"[{', '.join(str(d) for d in param.shape)}]"
        default = "zeros" if len(param.shape) == 1 else \
            "orthogonal" if param.shape == ("units", "units") else "glorot_uniform"
        params.append(f"{param.name}: " + (shape if param.init == default else
                                          f"{{shape: {shape}, init: {param.init}}}"))
    if peepholes:  # after the weights, before the biases, as specs/peephole.yaml
        first_bias = next(i for i, p in enumerate(params) if p.startswith("b_"))
        params[first_bias:first_bias] = [f"p_{g}: [units]" for g in "ifo"
                                         if g != "f" or not input_forget]
    state = "[h, c]" if base == "lstm" else "[h]"
    equations = [e.split("   # ") for e in _equations(base, acts, peepholes, input_forget)]
    width = max((len(e[0]) for e in equations if len(e) > 1), default=0)  # comments in one column
    lines = [f"state: {state}", "params:", *(f"  {p}" for p in params), "equations: |",
             *(f"  {e[0]:<{width}}  # {e[1]}" if len(e) > 1 else f"  {e[0]}"
               for e in equations)]
    return name, "\n".join(f"    {line}" for line in lines) + "\n"


def _equations(base: str, acts: tuple, peepholes: bool, coupled: bool) -> list[str]:
    def apply(function: str, expr: str) -> str:
        if function == "hard_sigmoid":  # the same sum twice: one node once the CSE pass ran
            return f"relu(({expr}) / 6 + 0.5) - relu(({expr}) / 6 - 0.5)"
        return expr if function == "linear" else f"{function}({expr})"

    def gate(function, g, weights, peep=""):  # a gate's pre-activation, and its peephole
        peep = f" + p_{g} * {peep}" if peepholes and peep else ""
        return apply(function, f"W_x{weights} @ x[t] + W_h{weights} @ h[t-1]{peep} + b_{weights}")

    if base == "simple":
        return [f"h[t] = {apply(acts[0], 'W_xh @ x[t] + W_hh @ h[t-1] + b_h')}"]
    if base == "lstm":
        f, g, h = acts
        forget = "1 - i   # forget gate, coupled (ONNX input_forget)" \
            if coupled else f"{gate(f, 'f', 'f', 'c[t-1]')}   # forget gate"
        return [f"i = {gate(f, 'i', 'i', 'c[t-1]')}   # input gate", f"f = {forget}",
                f"g = {gate(g, 'c', 'c')}   # candidate cell", "c[t] = f * c[t-1] + i * g",
                f"o = {gate(f, 'o', 'o', 'c[t]')}   # output gate",
                f"h[t] = o * {apply(h, 'c[t]')}"]
    f, g = acts
    candidate = "W_xn @ x[t] + b_xn + r * (W_hn @ h[t-1] + b_hn)" if base == "gru" else \
        "W_xn @ x[t] + W_hn @ (r * h[t-1]) + b_n"
    return [f"r = {gate(f, 'r', 'r')}   # reset gate", f"z = {gate(f, 'z', 'z')}   # update gate",
            f"n = {apply(g, candidate)}", "h[t] = (1 - z) * n + z * h[t-1]"]


def cells_section(cells: dict) -> list[str]:
    """The spec's ``cells:`` lines for {name: body from generated_cell}; none if empty."""
    if not cells:
        return []
    return ["cells:", *(f"  {name}:\n{body}".rstrip("\n") for name, body in cells.items())]


def unsupported(function: str, allowed) -> str:
    """Why an activation is refused: the functions that map."""
    return (f"no equation function computes '{function}' as it is (rnnc import writes cells "
            f"of {', '.join(allowed)})")


def import_layers(arrays: dict, wanted: dict, frm: str) -> dict:
    """Our parameters ``wanted`` (a spec's init_params) from ``arrays`` in ``frm``'s layout.

    A layer's cell is read from its parameter names, as ``interop.layers_of`` reads it; a
    generated cell's are its base cell's (less the forget gate's where it is coupled) and
    peepholes, all mapped by ``interop.import_params`` (the peepholes from ONNX's ``P``)."""
    grouped: dict[str, dict[str, set]] = {}
    for key in wanted:
        parts = key.split(".")
        layer, tag = parts[0], (parts[1] if len(parts) == 3 else "")
        grouped.setdefault(layer, {}).setdefault(tag, set()).add(parts[-1])
    layout = {}
    for layer, directions in grouped.items():
        given = frozenset(next(iter(directions.values())))
        names = given - PEEPHOLES
        cell = OTHER.get(names) or CELL_OF.get(names) or CELL_OF.get(names | FORGET)
        if cell is None:
            raise AssertionError(f"layer {layer}: no base cell has {sorted(names)}")
        layout[layer] = {"cell": cell, "directions": {tag: {} for tag in directions},
                         "peepholes": bool(given & PEEPHOLES)}
    params = import_params(arrays, layout, frm)
    missing = set(wanted) - set(params)
    if missing:
        raise AssertionError(f"parameters {sorted(missing)} were not imported")
    return {k: np.asarray(params[k]).astype(wanted[k].dtype) for k in wanted}
