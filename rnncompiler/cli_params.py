"""``rnnc export-params`` and ``rnnc import-params``: parameters in PyTorch's, Keras's
or ONNX's layout (``interop.py``)."""

from __future__ import annotations

import sys

from .arrays import check_params, load_npz, save_npz, save_text
from .import_keras import import_keras
from .import_onnx import import_onnx
from .import_torch import import_torch
from .interop import FORMATS, export_params, import_params, layers_of
from .params import init_params
from .spec import load_spec


def add_parsers(commands, common) -> None:
    export = commands.add_parser(
        "export-params", parents=[common], help="write parameters in another framework's layout",
        description="Write P.npz in PyTorch's (state_dict names, <layer>.weight_ih_l0...), "
                    "Keras's (<layer>/kernel...) or ONNX's (<layer>.W, .R, .B) layout.")
    export.add_argument("params", metavar="P.npz")
    export.add_argument("--to", required=True, choices=FORMATS)
    export.add_argument("-o", "--output", required=True, metavar="OUT.npz")
    imported = commands.add_parser(
        "import-params", parents=[common], help="read parameters from another framework's "
                                                "layout", description="Read SOURCE.npz, "
        "written in PyTorch's, Keras's or ONNX's layout, as the parameters of SPEC.")
    imported.add_argument("source", metavar="SOURCE.npz")
    imported.add_argument("--from", dest="frm", required=True, choices=FORMATS)
    imported.add_argument("--spec", required=True, metavar="SPEC")
    imported.add_argument("-o", "--output", required=True, metavar="P.npz")


def add_import_parser(commands, common) -> None:
    parser = commands.add_parser(
        "import", parents=[common], help="a spec and parameters from a PyTorch, ONNX or Keras "
                                         "model",
        description="Write a spec and its parameters for a PyTorch state_dict of "
                    "nn.RNN / LSTM / GRU modules and nn.Linear heads, applied in order, "
                    "for an ONNX model of RNN / LSTM / GRU operators and dense heads (as "
                    "torch.onnx.export writes it), or for a Keras 3 "
                    ".keras file (Sequential or Functional: SimpleRNN / LSTM / GRU, "
                    "Bidirectional, Dense, TimeDistributed(Dense); read with h5py, no Keras).")
    parser.add_argument("source", metavar="STATE.pt|STATE.npz|MODEL.onnx|MODEL.keras")
    parser.add_argument("--from", dest="frm", required=True, choices=("torch", "onnx", "keras"))
    parser.add_argument("-o", "--output", required=True, metavar="SPEC.yaml")
    parser.add_argument("--params", required=True, metavar="P.npz")
    parser.add_argument("--name", default="imported", help="the spec's name")
    parser.add_argument("--return", dest="returns", choices=("last", "sequence"),
                        default=None, help="--from torch: what the last recurrent layer "
                                           "gives: its final states (h_n, default) or every "
                                           "step")
    parser.add_argument("--nonlinearity", choices=("tanh", "relu"), default=None,
                        help="--from torch: that of the nn.RNN modules, which a state_dict "
                             "does not record (default tanh; relu: a custom cell simple_relu)")


def cmd_import(args) -> int:
    for option, value, why in (
            ("--nonlinearity", args.nonlinearity, "a state_dict does not record nn.RNN's; "
                                                  "ONNX and Keras models name their activations"),
            ("--return", args.returns, "a state_dict does not record what its model reads; "
                                       "ONNX and Keras models say what they output")):
        if value and args.frm != "torch":
            print(f"rnnc import: error: {option} is for --from torch ({why})", file=sys.stderr)
            return 2
    if args.frm == "onnx":
        text, params = import_onnx(args.source, args.name)
    elif args.frm == "keras":
        text, params = import_keras(args.source, args.name)
    else:
        text, params = import_torch(args.source, args.name, args.returns or "last",
                                    args.nonlinearity or "tanh")
    save_npz(args.params, params)
    save_text(args.output, text)
    print(f"wrote {args.output} and {args.params}: {len(params)} parameters")
    return 0


def cmd_export_params(args) -> int:
    arrays = export_params(load_npz(args.params, "parameters"), args.to)
    save_npz(args.output, arrays)
    print(f"wrote {args.output}: {len(arrays)} arrays in {args.to}'s layout")
    return 0


def cmd_import_params(args) -> int:
    spec = load_spec(args.spec, limits=not args.allow_large)
    wanted = layers_of(init_params(spec))
    params = import_params(load_npz(args.source, f"{args.frm} parameters"), wanted, args.frm)
    params = check_params(spec, params, args.source)
    save_npz(args.output, params)
    print(f"wrote {args.output}: {len(params)} parameters of {spec.name}")
    return 0
