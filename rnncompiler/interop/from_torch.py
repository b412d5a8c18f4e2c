"""``rnnc import STATE --from torch``: a spec and its parameters from a PyTorch
``state_dict`` of ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` modules and ``nn.Linear`` heads,
after an ``nn.Embedding`` where the model reads token ids.

The structure is read from the state_dict itself, in its order (the order the modules
were registered, which is the order a plain model applies them): a recurrent module's
cell from its gate count (4 LSTM, 3 GRU, 1 RNN: tanh, or relu where asked, as a state_dict
cannot tell: a generated cell ``simple_relu``, import_cells.py), its hidden and input sizes
from ``weight_hh_l0`` and ``weight_ih_l0``, its layers from ``_l<k>``, bidirectional
from ``_reverse``; a Linear's sizes from its weight. Each torch layer ``k`` of a module
``rnn`` becomes an rnn layer ``rnn_l<k>``; all but the last recurrent layer return their
sequence; the last returns ``last`` (its final states, PyTorch's ``h_n``, what a head on
``h_n`` reads) or, with ``returns="sequence"``, every step. A first module with a 2-D
``weight`` and no bias, before the recurrent ones and as wide as what the next reads, is
an ``nn.Embedding``: the input is class ids (``classes``: its rows) and an embedding
layer reads them; its ``padding_idx`` is not in a state_dict (``padding_id`` gives it),
nor is a module's ``dropout`` (nothing at inference).
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np

from ..arrays import load_npz
from ..build.params import init_params
from ..errors import Location, RnncError
from ..frontend.spec import load_spec_text
from .cells import cells_section, generated_cell, import_layers
from .layouts import RECURRENT
from .names import SpecNames

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # terminal colours in torch's messages
CELLS = {4: "lstm", 3: "gru", 1: "simple"}


def load_state_dict(path: str) -> dict[str, np.ndarray]:
    """A state_dict saved with ``torch.save`` (read with torch, weights only) or as .npz."""
    where = Location(str(path))
    if Path(path).suffix == ".npz":
        return load_npz(path, "a PyTorch state_dict")
    try:
        import torch
    except ImportError:
        raise RnncError("reading a torch.save file needs torch; or save the state_dict as "
                        ".npz ({k: v.numpy() for k, v in sd.items()})", where) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise RnncError("no such file", where) from None
    except pickle.UnpicklingError:  # weights_only refuses objects: a whole pickled model
        raise RnncError(f"holds pickled objects (torch.save(model)?), not a state_dict; "
                        f"rnnc reads weights only: save them with torch.save("
                        f"model.state_dict(), '{Path(path).name}')", where) from None
    except Exception as error:  # torch raises many kinds for a bad file
        first = ANSI.sub("", str(error)).strip().splitlines() or [type(error).__name__]
        raise RnncError(f"not a PyTorch state_dict: {first[0]}", where) from None
    if not isinstance(state, dict):
        raise RnncError(f"holds a {type(state).__name__}, not a state_dict; save "
                        f"model.state_dict()", where)
    return {k: v.detach().cpu().numpy() for k, v in state.items()}


def torch_spec(state: dict, name: str, returns: str = "last", nonlinearity: str = "tanh",
               padding_id: int | None = None) -> tuple[str, dict]:
    """(spec YAML text, parameters in PyTorch's layout) for ``state``; ``nonlinearity``
    is nn.RNN's (tanh or relu), ``padding_id`` the first nn.Embedding's ``padding_idx``."""
    modules = _modules(state)
    recurrent = [m for m, info in modules.items() if info["kind"] == "rnn"]
    embedding = _embedding(modules)
    layers, arrays, previous, cells = [], {}, "x", {}
    names = SpecNames(["x"])
    for module, info in modules.items():
        if module == embedding:
            table = info["arrays"]["weight"]
            if padding_id is not None and not 0 <= padding_id < table.shape[0]:
                raise RnncError(f"--padding-id {padding_id} is not an id of the nn.Embedding "
                                f"'{module}' (0 to {table.shape[0] - 1})")
            ident = names.claim(module, "embedding")
            layers.append(f"  - {{name: {ident}, type: embedding, input: x, units: "
                          f"{table.shape[1]}" + ("" if padding_id is None else
                                                 f", padding_id: {padding_id}") + "}")
            arrays[f"{ident}.weight"] = table
            previous = ident
            continue
        if info["kind"] == "dense":
            ident = names.claim(module, "linear")
            weight = info["arrays"]["weight"]
            layers.append(f"  - {{name: {ident}, type: dense, units: {weight.shape[0]}, "
                          f"input: {previous}}}")
            arrays[f"{ident}.weight"] = weight
            arrays[f"{ident}.bias"] = info["arrays"].get("bias", np.zeros(weight.shape[0]))
            previous = ident
            continue
        found = info["arrays"]
        depth = 1 + max(int(RECURRENT.match(k)["layer"]) for k in found)
        for k in range(depth):
            keys = {m["kind"] + (m["reverse"] or ""): key for key in found
                    if (m := RECURRENT.match(key)) and int(m["layer"]) == k}
            hidden = found[keys["weight_hh"]].shape[1]
            gates = found[keys["weight_ih"]].shape[0] // hidden
            if gates not in CELLS:
                raise RnncError(f"{module}: {gates} gate blocks is not an RNN, GRU or LSTM")
            bidirectional = "weight_ih_reverse" in keys
            last = module == recurrent[-1] and k == depth - 1
            layer = names.claim(f"{module}_l{k}")
            cell, body = generated_cell(CELLS[gates], (nonlinearity,) if gates == 1 else None)
            cells.update({cell: body} if body else {})
            layers.append(f"  - {{name: {layer}, type: rnn, cell: {cell}, units: "
                          f"{hidden}, input: {previous}, return: "
                          f"{returns if last else 'sequence'}"
                          + (", direction: bidirectional" if bidirectional else "") + "}")
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                for suffix in ("", "_reverse") if bidirectional else ("",):
                    value = found.get(keys.get(kind + suffix, ""))
                    if value is None:  # bias=False
                        value = np.zeros(gates * hidden)
                    arrays[f"{layer}.{kind}_l0{suffix}"] = value
            previous = layer
    if padding_id is not None and embedding is None:
        raise RnncError("--padding-id is nn.Embedding's padding_idx, but the state_dict has "
                        "no nn.Embedding (its first module: a 2-D weight without a bias, "
                        "before a recurrent module)")
    if nonlinearity != "tanh" and not cells:
        raise RnncError(f"nonlinearity {nonlinearity} is nn.RNN's; the state_dict has no "
                        "nn.RNN module (an LSTM's or GRU's activations are fixed)")
    for cell in list(cells):  # named apart from the layers
        named = names.claim(cell)
        layers = [line.replace(f"cell: {cell},", f"cell: {named},") for line in layers]
        cells[named] = cells.pop(cell)
    first = next(iter(modules.values()))
    given = f"classes: {first['arrays']['weight'].shape[0]}" if embedding else \
        f"features: {_reads(first)}"
    text = "\n".join(["# imported from a PyTorch state_dict by rnnc import", "rnnc: 1",
                      f"name: {name}", "inputs:", f"  x: {{{given}}}",
                      *cells_section(cells), "layers:", *layers]) + "\n"
    return text, arrays


def _modules(state: dict) -> dict[str, dict]:
    """module -> {"kind": "rnn" or "dense", "arrays": ...}, in the state_dict's order."""
    modules: dict[str, dict] = {}
    for key, value in state.items():
        match = RECURRENT.match(key)
        if match:
            module = modules.setdefault(match["module"] or "rnn", {"kind": "rnn", "arrays": {}})
            module["arrays"][key] = value
            continue
        module_name, _, param = key.rpartition(".")
        if param in ("weight", "bias") and np.ndim(value) in (1, 2):
            modules.setdefault(module_name or "linear", {"kind": "dense", "arrays": {}})[
                "arrays"][param] = value
            continue
        raise RnncError(f"state_dict entry '{key}' is neither an nn.RNN/LSTM/GRU, an "
                        "nn.Linear nor an nn.Embedding parameter")
    return modules


def _reads(info: dict) -> int:
    """The features a module reads: its (first layer's) input size."""
    if info["kind"] == "dense":
        return info["arrays"]["weight"].shape[1]
    return next(v.shape[1] for k, v in info["arrays"].items()
                if (m := RECURRENT.match(k)) and m["kind"] == "weight_ih" and m["layer"] == "0")


def _embedding(modules: dict) -> str | None:
    """The first module where it is an nn.Embedding, else None: a 2-D ``weight`` alone
    (no bias), followed by a recurrent module, whose next module reads rows of its size
    (an nn.Linear without bias would give it ``weight.shape[0]`` features)."""
    order = list(modules.items())
    module, info = order[0]
    table = info["arrays"].get("weight")
    if info["kind"] != "dense" or set(info["arrays"]) != {"weight"} or table.ndim != 2 or \
            len(order) < 2 or all(i["kind"] != "rnn" for _, i in order[1:]):
        return None
    reads = _reads(order[1][1])
    if reads == table.shape[1]:
        return module
    if reads != table.shape[0]:
        raise RnncError(f"state_dict entry '{module}.weight' {list(table.shape)}, the first "
                        f"and without a bias, is neither an nn.Embedding table [ids, size] "
                        f"nor an nn.Linear weight [out, in] for the next module, which reads "
                        f"{reads} features")
    return None


def import_torch(path: str, name: str, returns: str = "last", nonlinearity: str = "tanh",
                 padding_id: int | None = None):
    """(spec text, our parameters) for the state_dict in ``path``; ``nonlinearity``: that
    of its nn.RNN modules (tanh or relu); ``padding_id``: its nn.Embedding's padding_idx,
    which a state_dict does not record."""
    try:
        text, arrays = torch_spec(load_state_dict(path), name, returns, nonlinearity,
                                  padding_id)
    except RnncError as error:  # what the file holds: said of the file
        if error.location is not None:
            raise
        raise RnncError(error.message, Location(str(path))) from None
    wanted = init_params(load_spec_text(text, filename=f"{name}.yaml"))
    return text, import_layers(arrays, wanted, "torch")
