"""``rnnc import``, ``import-params`` and ``export-params``: models and parameters of
PyTorch, Keras and ONNX (``interop.py``, ``import_*.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

from .. import check_params, init_params, load_npz, load_spec
from ..errors import Location, RnncError
from ..interop.layouts import export_params, import_params, infer_layout, layers_of
from ..writing import Outputs, check_writable, save_npz
from .commands import count_values

SUFFIX_SOURCES = {".pt": "torch", ".pth": "torch", ".npz": "torch", ".onnx": "onnx",
                  ".keras": "keras"}  # what `rnnc import` reads, by suffix


def cmd_import(args) -> int:
    frm = import_source(args.source, args.frm)
    for option, value, why in (
            ("--nonlinearity", args.nonlinearity, "a state_dict does not record nn.RNN's; "
                                                  "ONNX and Keras models name their activations"),
            ("--return", args.returns, "a state_dict does not record what its model reads; "
                                       "ONNX and Keras models say what they output"),
            ("--padding-id", args.padding_id, "a state_dict does not record nn.Embedding's "
                                              "padding_idx; a Keras model says mask_zero")):
        if value is not None and frm != "torch":  # a usage error: exit 2, as argparse's
            print(f"rnnc import: error: {option} is for --from torch ({why})",
                  file=sys.stderr)
            return 2
    check_writable(args.output, "the spec")
    check_writable(args.params, "the parameters")
    if frm == "onnx":
        from ..interop.from_onnx import import_onnx
        text, params = import_onnx(args.source, args.name)
    elif frm == "keras":
        from ..interop.from_keras import import_keras
        text, params = import_keras(args.source, args.name)
    else:
        from ..interop.from_torch import import_torch
        text, params = import_torch(args.source, args.name, args.returns or "last",
                                    args.nonlinearity or "tanh", args.padding_id)
    with Outputs() as outputs:
        outputs.npz(args.params, params, "the parameters")
        outputs.text(args.output, text, "the spec")
    print(f"wrote {args.output} and {args.params}: {count_values(params)}")
    return 0


def import_source(path: str, frm: str | None) -> str:
    """What ``rnnc import`` reads: --from, else told by the file's suffix."""
    told = SUFFIX_SOURCES.get(Path(path).suffix.lower())
    if frm is None:
        if told is None:
            raise RnncError("cannot tell what this file is from its suffix (.pt, .pth or .npz: "
                            "a PyTorch state_dict; .onnx; .keras); give --from",
                            Location(path))
        return told
    if told is not None and told != frm:
        raise RnncError(f"a {Path(path).suffix} file is read as {told}, but --from is {frm}: "
                        "rename it, or drop --from", Location(path))
    return frm


def cmd_export_params(args) -> int:
    check_writable(args.output)
    arrays = export_params(load_npz(args.params, "parameters"), args.to)
    save_npz(args.output, arrays)
    print(f"wrote {args.output}: {len(arrays)} arrays in {args.to}'s layout")
    return 0


def cmd_import_params(args) -> int:
    check_writable(args.output)
    spec = load_spec(args.spec, limits=not args.allow_large)
    wanted = layers_of(init_params(spec))
    arrays = load_npz(args.source, "parameters")
    told = infer_layout(arrays)
    frm = args.frm or told
    if frm is None:
        raise RnncError("cannot tell whose layout these arrays are in from their names; "
                        "give --from torch, keras or onnx", Location(args.source))
    if args.frm and told and told != args.frm:
        raise RnncError(f"the arrays are named as {told} names them, but --from is {args.frm}",
                        Location(args.source))
    params = check_params(spec, import_params(arrays, wanted, frm), args.source)
    save_npz(args.output, params)
    print(f"wrote {args.output}: {count_values(params)} of {spec.name}"
          + ("" if args.frm else f" (read as {frm}'s layout)"))
    return 0
