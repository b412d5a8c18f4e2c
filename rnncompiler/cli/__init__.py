"""``rnnc``: the command line.

``parser.py`` says what the commands take; a command's module is imported only when it
runs, so that asking for help costs no numpy or onnx. ``main`` turns an ``RnncError``
into one line on stderr and exit status 1; usage errors exit with 2; Ctrl-C with 130
(``rnnc train`` saves what it reached first). Any other exception on a valid spec is a
bug in the compiler: one line that says so, and exit status 3. Output files are written
whole or not at all (``writing.py``).
"""

from __future__ import annotations

import os
import sys
from importlib import import_module

COMMANDS = {  # command -> the module of this package that runs it, and its function
    "schema": ("commands", "cmd_schema"), "check": ("commands", "cmd_check"),
    "init": ("commands", "cmd_init"), "run": ("commands", "cmd_run"),
    "grad": ("commands", "cmd_grad"), "gradcheck": ("commands", "cmd_gradcheck"),
    "compile": ("commands", "cmd_compile"), "inspect": ("inspect_graph", "cmd_inspect"),
    "train": ("training", "cmd_train"), "generate": ("model_use", "cmd_generate"),
    "evaluate": ("model_use", "cmd_evaluate"), "predict": ("model_use", "cmd_predict"),
    "export-params": ("interop", "cmd_export_params"),
    "import-params": ("interop", "cmd_import_params"), "import": ("interop", "cmd_import"),
}


def main(argv=None) -> int:
    args = None
    try:
        from .parser import build_parser

        args = build_parser().parse_args(argv)
        from ..errors import RnncError

        module, name = COMMANDS[args.command]
        command = getattr(import_module(f"{__name__}.{module}"), name)
        try:
            return command(args)
        except RnncError as error:
            print(str(error), file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rnnc check SPEC | head`: the reader left; not an error
        sys.stdout = open(os.devnull, "w")
        return 0
    except Exception as error:  # a valid spec reached a compiler bug: say so, in one line
        print(internal_error(error, args), file=sys.stderr)
        return 3


def internal_error(error: Exception, args) -> str:
    """One line for an unexpected exception: what it was, that it is rnnc's fault, what
    may avoid it, and what to report (RNNC_TRACEBACK=1 prints the traceback too)."""
    if os.environ.get("RNNC_TRACEBACK"):
        import traceback
        traceback.print_exc()
    what = " ".join(f"{type(error).__name__}: {error}".split())
    if len(what) > 300:
        what = what[:297] + "..."
    spec = getattr(args, "spec", None)
    avoid = "; -O0 may avoid it" if getattr(args, "level", 0) else ""
    return (f"{spec + ': ' if spec else ''}internal error: {what} — a bug in rnnc{avoid}; "
            "please report it with the spec")
