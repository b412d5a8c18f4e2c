"""``rnnc import MODEL.onnx --from onnx``: a spec and its parameters from an ONNX model of
RNN / LSTM / GRU operators and dense heads, as ``torch.onnx.export`` writes them.

rnncompiler/import_onnx_graph.py walks the nodes each graph output needs and gives each a
meaning; this module turns what it found into a spec (docs/interop.md):

- each recurrent operator becomes an rnn layer (named after the node, else ``R`` or
  ``R1``, ``R2`` ...), fed a graph input or an earlier layer; ``direction``, ``layout``
  and GRU's ``linear_before_reset`` (1: ``gru``, 0: ``gru_reset_before``) are read;
  peepholes, ``input_forget`` and other activations give a generated custom cell
  (rnncompiler/import_cells.py);
- a layer returns its ``sequence`` where anything reads every step (or, for a backward or
  bidirectional operator, the last step of Y, which is not its final state), else
  ``last``: its final states, ONNX's Y_h, also Y's last step for a forward operator;
- each Gemm or MatMul (with its bias Add and activation) becomes a dense layer; one that
  reads the last step of a sequence layer becomes an rnn layer whose cell is that dense
  layer applied at each step (custom cell ``dense_<activation>``, no recurrence), of which
  ``return: last`` is the head on the last step;
- the spec takes arrays batch-first (docs/spec.md, Array files) whatever the model's layout,
  and keeps the graph input's name where it is an identifier; its outputs are the graph outputs (a
  head that gives one is named after it); one a spec cannot express is left out and the
  spec says so, unless it is the first.
"""

from __future__ import annotations

import sys

import numpy as np
import onnx

from ..build.params import init_params
from ..errors import RnncError
from ..frontend.spec import load_spec_text
from .cells import cells_section, generated_cell, import_layers
from .names import IDENT, SpecNames
from .onnx_graph import RECURRENT, Walker
from .onnx_values import Refused, failure

BUILTIN = {"simple", "lstm", "gru", "gru_reset_before", "dense", "rnn", "repeat"}
STEP_CELL = """\
  {name}:
    state: [h]
    params: {{W: [units, input], b: [units]}}
    equations: |
      h[t] = {expr}
"""


def import_onnx(path: str, name: str) -> tuple[str, dict]:
    """(spec YAML text, our parameters) for the model in ``path``."""
    try:
        model = onnx.load(path)
    except Exception as error:  # protobuf and file errors alike
        raise failure(path, f"not an ONNX model: {error}") from None
    graph = model.graph
    if not any(n.op_type in RECURRENT for n in graph.node):
        raise failure(path, "the model has no RNN, LSTM or GRU operator; an exporter that "
                            "unrolls the loop writes MatMul and Tanh for each step "
                            "(torch.onnx.export does so for nn.RNN with dynamo=True: export it "
                            "with dynamo=False)")
    if not graph.output:
        raise failure(path, "the model has no graph output")
    walker = Walker(model, path)
    chosen, notes = [], []
    for i, output in enumerate(graph.output):
        try:
            value = walker.evaluate(output.name)
            try:
                ref, layout = walker.output_ref(value)
            except Refused as why:
                raise failure(path, f"graph output '{output.name}' {why}") from None
            Plan(walker, [*chosen, (output.name, ref)])  # can a spec give them all?
        except RnncError as error:
            if i == 0:
                raise
            notes.append(f"graph output '{output.name}' is left out: {error.message}")
            continue
        chosen.append((output.name, ref))
        if layout not in ("[batch, T, features]", "[batch, features]"):
            notes.append(f"graph output '{output.name}' is {layout}; the spec gives it "
                         "batch-first, features last")
    for source in walker.sources.values():
        if source.kind == "input" and source.t == f"{source.id}[0]":
            notes.insert(0, f"graph input '{source.id}' is [T, batch, features]; the spec takes "
                            "it batch-first, [batch, T, features]")
    for note in notes:
        print(f"rnnc import: note: {note}", file=sys.stderr)
    return Plan(walker, chosen).write(name, notes)


class Plan:
    """Which records the chosen outputs need, what each layer returns, and their names."""

    def __init__(self, walker: Walker, outputs: list):
        self.walker, self.outputs = walker, outputs
        self.uses: dict[int, set] = {}
        self.rnns, self.denses, self.inputs = set(), set(), []
        todo = [ref for _, ref in outputs]
        while todo:
            ref = todo.pop()
            src = walker.sources[ref[0]]
            if src.kind == "input":
                if src.id not in self.inputs:
                    self.inputs.append(src.id)
                continue
            record = (walker.rnns if src.kind in ("seq", "state") else walker.denses)[src.owner]
            if src.kind == "dense":
                self.denses.add(src.owner)
            else:
                self.rnns.add(src.owner)
                self.uses.setdefault(src.owner, set()).add(ref[1])
            todo.append(record.input)
        self.modes = {k: self._mode(k) for k in self.rnns}
        refs = [ref for _, ref in outputs]
        if len(set(refs)) != len(refs):
            first = next(out for out, ref in outputs if ref == refs[-1])
            raise failure(walker.path, f"it is the same as graph output '{first}'")
        self._name()

    def _mode(self, k: int) -> str:
        record = self.walker.rnns[k]
        uses = set(self.uses[k])
        if record.direction == "forward":  # Y_h is Y's last step
            uses = {"last" if u == "state" else u for u in uses}
        mode = "sequence" if "seq" in uses or ("last" in uses and record.direction !=
                                                "forward") else "last"
        if mode == "sequence" and "state" in uses:
            raise failure(self.walker.path, f"{record.label} is "
                                            f"{record.direction}, and both its Y and its final "
                                            "state Y_h are used; a spec's layer returns one of "
                                            "them (`return: sequence` or `last`)")
        return mode

    # ------------------------------------------------------------------ names
    def _name(self) -> None:
        walker = self.walker
        self.claim = claim = SpecNames(BUILTIN).claim
        self.names: dict[str, str] = {}  # source id (input) / "rnn<k>" / "dense<k>" -> name
        for i in self.inputs:
            self.names[i] = claim(i if IDENT.fullmatch(i) else "", "x")
        rnns = sorted(self.rnns)
        for n, k in enumerate(rnns, 1):
            node = walker.rnns[k].node
            self.names[f"rnn{k}"] = claim(node.removeprefix("node_"),
                                          "R" if len(rnns) == 1 else f"R{n}")
        direct = {ref: out for out, ref in self.outputs}
        for n, k in enumerate(sorted(self.denses), 1):
            record = walker.denses[k]
            out = direct.get((record.out, "seq")) or direct.get((record.out, "vec"))
            scope = record.node.strip("/").split("/")
            self.names[f"dense{k}"] = claim(out if out and IDENT.fullmatch(out) else "",
                                            "_".join(scope[:-1]) if len(scope) > 1 else "",
                                            record.node.removeprefix("node_"), f"D{n}")

    def layer_of(self, ref) -> tuple[str | None, str]:
        """(the layer or input giving ``ref`` itself, or None; the sequence it is a step of)."""
        src = self.walker.sources[ref[0]]
        if src.kind == "input":
            base = self.names[src.id]
        elif src.kind == "dense":
            base = self.names[f"dense{src.owner}"]
        else:
            base = self.names[f"rnn{src.owner}"]
            if ref[1] != "seq" and self.modes[src.owner] == "sequence":
                return None, base
            return base, base
        return (None if ref[1] == "last" else base), base

    # ------------------------------------------------------------------ writing
    def write(self, name: str, notes: list) -> tuple[str, dict]:
        walker = self.walker
        lines, arrays, cells, dtype = [], {}, {}, None
        self.generated: dict[str, tuple] = {}  # generated cell -> (its name here, its body)
        needed = {("rnn", k) for k in self.rnns} | {("dense", k) for k in self.denses}
        items = [(k, kind) for kind, k in walker.order if (kind, k) in needed]
        for k, kind in items:
            if kind == "rnn":
                r = walker.rnns[k]
                layer = self.names[f"rnn{k}"]
                source, _ = self.layer_of(r.input)
                cell, body = generated_cell(r.cell, r.activations, "P" in r.arrays, r.coupled)
                if body is not None and cell not in self.generated:  # import_cells.py
                    self.generated[cell] = (self.claim(cell), body)
                cell = self.generated[cell][0] if body is not None else cell
                lines.append(f"  - {{name: {layer}, type: rnn, cell: {cell}, units: {r.units}, "
                             f"input: {source}, return: {self.modes[k]}"
                             + (f", direction: {r.direction}" if r.direction != "forward" else "")
                             + "}")
                arrays.update({f"{layer}.{p}": v for p, v in r.arrays.items()})
                dtype = dtype or r.arrays["W"].dtype
            else:
                d = walker.denses[k]
                layer = self.names[f"dense{k}"]
                source, base = self.layer_of(d.input)
                arrays[f"{layer}.W"] = d.W
                arrays[f"{layer}.b"] = d.b if d.b is not None else np.zeros(len(d.W), d.W.dtype)
                lines.append(self._dense(layer, d.W.shape[0], source, base, d.activation, cells))
        outputs, names = [], [line.split("name: ")[1].split(",")[0] for line in lines]
        for out, ref in self.outputs:
            layer, base = self.layer_of(ref)
            if layer is None:  # the last step of a sequence, as it is: an identity head
                layer = self.claim(out if IDENT.fullmatch(out) else "", f"{base}_last")
                units = self._features(ref)
                lines.append(self._dense(layer, units, None, base, "linear", cells))
                names.append(layer)
                arrays[f"{layer}.W"] = np.eye(units)
                arrays[f"{layer}.b"] = np.zeros(units)
            outputs.append(layer)
        text = self._text(name, lines, cells, outputs if outputs != names[-1:] else [], notes,
                          dtype)
        return text, self._params(text, name, arrays)

    def _dense(self, layer, units, source, base, activation, cells) -> str:
        if source is not None:
            act = f", activation: {activation}" if activation != "linear" else ""
            return f"  - {{name: {layer}, type: dense, units: {units}, input: {source}{act}}}"
        cell = cells.get(activation) or self.claim(f"dense_{activation}", "dense_step")
        cells[activation] = cell
        return (f"  - {{name: {layer}, type: rnn, cell: {cell}, units: {units}, input: {base}, "
                "return: last}")

    def _features(self, ref) -> int:
        src = self.walker.sources[ref[0]]
        total = 1
        for atom in src.feat:
            total *= self.walker.space.sizes[atom][0]
        return total

    def _text(self, name, lines, cells, outputs, notes, dtype) -> str:
        walker = self.walker
        dtype = np.dtype(dtype or np.float32)
        ops = [f"{walker.rnns[k].op} '{walker.rnns[k].node}'" if walker.rnns[k].node
               else walker.rnns[k].op for k in sorted(self.rnns)]
        head = [f"# imported from an ONNX model ({', '.join(ops)}) by rnnc import; arrays are "
                "batch-first"]
        head += [f"# note: {n}" for n in notes]
        text = [*head, "rnnc: 1", f"name: {name}",
                f"dtype: {'float64' if dtype == np.float64 else 'float32'}", "inputs:"]
        for i in self.inputs:
            src = walker.sources[i]
            features = walker.space.sizes[src.feat[0]]
            if features[1]:
                raise failure(walker.path, f"graph input '{i}' has no static number of "
                                           "features")
            text.append(f"  {self.names[i]}: {{features: {features[0]}}}")
        text += cells_section(dict(self.generated.values()))
        if cells:
            text += [] if self.generated else ["cells:"]
            for activation, cell in cells.items():
                expr = "W @ x[t] + b" if activation == "linear" else \
                    f"{activation}(W @ x[t] + b)"
                text.append(STEP_CELL.format(name=cell, expr=expr).rstrip("\n"))
        text += ["layers:", *lines]
        if outputs:
            text.append(f"outputs: [{', '.join(outputs)}]")
        steps = {walker.space.sizes[walker.sources[i].t] for i in self.inputs}
        if len(steps) == 1 and not next(iter(steps))[1]:  # the model's own, fixed length
            text.append(f"unroll: {{steps: {next(iter(steps))[0]}}}")
        return "\n".join(text) + "\n"

    def _params(self, text: str, name: str, arrays: dict) -> dict:
        """Ours: the operators' W, R, B through interop's ONNX table, the heads' as they are."""
        wanted = init_params(load_spec_text(text, filename=f"{name}.yaml"))
        rnn_layers = {self.names[f"rnn{k}"]: self.walker.rnns[k] for k in self.rnns}
        onnx_arrays = {k: v for k, v in arrays.items() if k.rsplit(".", 1)[0] in rnn_layers}
        params = import_layers(onnx_arrays, {k: v for k, v in wanted.items()
                                             if k.split(".")[0] in rnn_layers}, "onnx")
        params.update({k: np.asarray(v) for k, v in arrays.items() if k not in onnx_arrays})
        if set(params) != set(wanted):
            raise AssertionError(f"parameters {sorted(set(params) ^ set(wanted))}")
        return {k: v.astype(wanted[k].dtype) for k, v in params.items()}
