"""``rnnc``: the command line (SPEC.md §8).

Parses arguments, calls the public API, and turns an ``RnncError`` into one line on
stderr and exit status 1. Usage errors exit with 2. Any other exception on a valid spec
is a bug in the compiler: one line that says so, and exit status 3. Output files are
written whole or not at all.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import __version__, cli_params, cli_train
from .api import compile_spec
from .arrays import check_inputs, check_params, load_npz, save_bytes, save_npz, save_text
from .backend import available_backends
from .errors import RnncError
from .gradcheck import gradcheck
from .params import init_params, param_infos
from .spec import Spec, load_spec

EPILOG = ("Spec format: SPEC.md. Exit status: 0 done, 1 bad input, 2 bad usage, "
          "3 internal error (a bug in rnnc).")


def _steps(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be an integer >= 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnc", epilog=EPILOG,
        description="Compile recurrent networks written as YAML specs.")
    parser.add_argument("--version", action="version", version=f"rnnc {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--allow-large", action="store_true",
                        help="lift the limits on sizes, steps and parameter count")

    commands.add_parser("schema", help="print the JSON Schema of the spec format",
                        description="Print the JSON Schema of the spec format, for editors "
                                    "(yaml-language-server: $schema=...).")
    check = commands.add_parser("check", parents=[common],
                                help="validate a spec and print a summary",
                                description="Validate SPEC and print what it builds.")
    check.add_argument("spec", metavar="SPEC")
    check.add_argument("--steps", type=_steps, metavar="T", help="unroll over T steps")

    init = commands.add_parser("init", parents=[common], help="write initial parameters",
                               description="Write fresh parameters for SPEC to an .npz file, "
                                           "keyed '<layer>.<param>'.")
    init.add_argument("spec", metavar="SPEC")
    init.add_argument("-o", "--output", required=True, metavar="PARAMS.npz")
    init.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    run = commands.add_parser("run", parents=[common], help="run the network on inputs",
                              description="Run SPEC on the arrays in INPUTS and write every "
                                          "output under its layer name, and every rnn layer's "
                                          "final states as '<layer>.<state>'.")
    run.add_argument("spec", metavar="SPEC")
    run.add_argument("--params", required=True, metavar="P.npz")
    run.add_argument("--inputs", required=True, metavar="X.npz")
    run.add_argument("-o", "--output", required=True, metavar="OUT.npz")
    _backend_and_steps(run)

    grad = commands.add_parser("grad", parents=[common],
                               help="write the loss and its gradients",
                               description="Compute the loss of SPEC on the inputs and targets "
                                           "in XY and its gradient for every parameter "
                                           "(BPTT as unroll.bptt says); write `loss` and "
                                           "`grad.<layer>.<param>`.")
    grad.add_argument("spec", metavar="SPEC")
    grad.add_argument("--params", required=True, metavar="P.npz")
    grad.add_argument("--inputs", required=True, metavar="XY.npz")
    grad.add_argument("-o", "--output", required=True, metavar="G.npz")
    _backend_and_steps(grad)

    check_grads = commands.add_parser(
        "gradcheck", parents=[common], help="check gradients against finite differences",
        description="Compare the derived gradients with float64 central differences on "
                    "random parameters and data; print the worst relative error per "
                    "parameter; exit 1 above the tolerance. Checks full BPTT.")
    check_grads.add_argument("spec", metavar="SPEC")
    check_grads.add_argument("--steps", type=_steps, metavar="T", help="unroll over T steps")
    check_grads.add_argument("--tolerance", type=float, default=1e-5, metavar="TOL",
                             help="the worst relative error allowed (default 1e-5)")
    check_grads.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    inspect = commands.add_parser(
        "inspect", parents=[common], help="see the unrolled graph",
        description="Show the unrolled graph: a summary (text), the graph as data (json: "
                    "networkx node-link; graphml) or a picture laid out by time (dot, svg, "
                    "png; every parameter drawn once). --grad-flow plots ‖dL/dh_t‖ per step.")
    inspect.add_argument("spec", metavar="SPEC")
    inspect.add_argument("--steps", type=_steps, metavar="T", help="unroll over T steps")
    inspect.add_argument("--format", choices=FORMATS, default=None,
                         help="text (default), json, graphml, dot, svg or png (from -o's suffix "
                              "when not given)")
    inspect.add_argument("--grad", action="store_true", help="the training graph (BPTT)")
    inspect.add_argument("-O", dest="level", type=int, choices=(0, 1, 2), default=None,
                         metavar="LEVEL", help="show the graph after the passes of LEVEL and "
                                               "what each changed (default: as written)")
    inspect.add_argument("--grad-flow", action="store_true",
                         help="plot ‖dL/dh_t‖ for every step and layer (needs --params and "
                              "--inputs; writes -o as PNG/SVG and a .csv beside it)")
    inspect.add_argument("--params", metavar="P.npz")
    inspect.add_argument("--inputs", metavar="XY.npz")
    inspect.add_argument("-o", "--output", metavar="FILE")

    compile_ = commands.add_parser("compile", parents=[common],
                                   help="emit code for a backend",
                                   description="Emit SPEC for a backend: with numpy, one "
                                               "standalone Python module that needs only numpy.")
    compile_.add_argument("spec", metavar="SPEC")
    compile_.add_argument("-o", "--output", required=True, metavar="PATH")
    compile_.add_argument("--params", metavar="P.npz",
                          help="check these parameters against the spec (ONNX: embed them)")
    compile_.add_argument("--train", action="store_true",
                          help="also emit loss_and_grads and train_step")
    _backend_and_steps(compile_, default=None)
    cli_train.add_parser(commands, common, _steps)
    cli_params.add_parsers(commands, common)
    cli_params.add_import_parser(commands, common)
    return parser


def _backend_and_steps(parser, default: str | None = "numpy") -> None:
    names = ", ".join(sorted(available_backends())) or "none installed"
    parser.add_argument("--backend", default=default, required=default is None, metavar="B",
                        help=f"backend ({names})" + (f"; default {default}" if default else ""))
    parser.add_argument("--steps", type=_steps, metavar="T",
                        help="unroll over T steps (default: unroll.steps, else the inputs')")
    parser.add_argument("--onnx-mode", choices=("unrolled", "scan", "native"), default=None,
                        help="ONNX: every step written out, a Scan loop (default; any T at "
                             "run time) or ONNX's own RNN/LSTM/GRU operators")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="ONNX: run on onnxruntime's CPU (default) or CUDA provider")
    parser.add_argument("--state-io", action="store_true",
                        help="states that start from zeros start from inputs "
                             "<layer>.<state>0 instead (streaming)")
    parser.add_argument("-O", dest="level", type=int, choices=(0, 1, 2), default=2,
                        metavar="LEVEL", help="optimisation: 0 none, 1 dead code, 2 also fused, "
                                              "hoisted and batched products (default 2)")


def _options(args) -> dict:
    """The backend options of a command, as compile_spec takes them."""
    if args.backend != "onnx" and (args.onnx_mode or args.device):
        raise RnncError("--onnx-mode and --device are for --backend onnx")
    return {"onnx_mode": args.onnx_mode, "device": args.device, "state_io": args.state_io,
            "level": args.level}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
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


def cmd_schema(args) -> int:
    from .schema import schema_text

    sys.stdout.write(schema_text())
    return 0


def cmd_check(args) -> int:
    spec = load_spec(args.spec, limits=not args.allow_large)
    print(summary(spec, args.steps))
    return 0


def cmd_init(args) -> int:
    spec = load_spec(args.spec, limits=not args.allow_large)
    params = init_params(spec, args.seed)
    save_npz(args.output, params)
    count = sum(value.size for value in params.values())
    print(f"wrote {args.output}: {count:,} parameters in {len(params)} arrays")
    return 0


def cmd_run(args) -> int:
    spec = load_spec(args.spec, limits=not args.allow_large)
    options = _options(args)
    inputs, steps = check_inputs(spec, load_npz(args.inputs, "inputs"), args.steps, args.inputs,
                                 state_io=args.state_io)
    params = check_params(spec, load_npz(args.params, "parameters"), args.params)
    outputs = compile_spec(spec, args.backend, steps, **options).run(params, inputs)
    save_npz(args.output, outputs)
    shapes = ", ".join(f"{name} {list(value.shape)}" for name, value in outputs.items())
    print(f"wrote {args.output}: {shapes}")
    return 0


def cmd_grad(args) -> int:
    spec = load_spec(args.spec, limits=not args.allow_large)
    options = _options(args)
    data, steps = check_inputs(spec, load_npz(args.inputs, "inputs and targets"), args.steps,
                               args.inputs, with_targets=True, state_io=args.state_io)
    params = check_params(spec, load_npz(args.params, "parameters"), args.params)
    artifact = compile_spec(spec, args.backend, steps, train=True, **options)
    loss, grads = artifact.loss_and_grads(params, data)
    save_npz(args.output, {"loss": loss, **grads})
    print(f"wrote {args.output}: loss {float(loss):.6g} and {len(grads)} gradients")
    return 0


def cmd_gradcheck(args) -> int:
    spec = load_spec(args.spec, limits=not args.allow_large)
    if spec.loss is None:
        raise RnncError("the spec has no `loss:` to differentiate", spec.source.loc(()))
    results = gradcheck(spec, args.steps, seed=args.seed)
    width = max(len(r.name) for r in results)
    print(f"{'parameter':<{width}}  directions  worst relative error")
    for result in results:
        flag = "  <- above tolerance" if result.beyond_own_error > args.tolerance else \
            "  (within the differences' own error)" if result.worst > args.tolerance else ""
        print(f"{result.name:<{width}}  {result.checked:>10}  {result.worst:.2e}{flag}")
    failed = [r.name for r in results if r.beyond_own_error > args.tolerance]
    if spec.unroll.bptt != "full":
        print(f"(checked with full BPTT; the spec truncates with {spec.unroll.bptt})")
    if failed:
        print(f"error: {len(failed)} parameter(s) above tolerance {args.tolerance:g}",
              file=sys.stderr)
        return 1
    print(f"ok: every gradient within {args.tolerance:g}")
    return 0


FORMATS = ("text", "json", "graphml", "dot", "svg", "png")


def cmd_inspect(args) -> int:
    from .autodiff import training_graph
    from .inspection import summarize, to_dot, to_graphml, to_json
    from .passes.pipeline import optimize
    from .unroll import unroll

    spec = load_spec(args.spec, limits=not args.allow_large)
    if args.grad_flow:
        return _grad_flow(spec, args)
    fmt = args.format or (Path(args.output).suffix.lstrip(".") if args.output else "text")
    if fmt not in FORMATS:
        raise RnncError(f"cannot tell the format from '{args.output}'; give --format")
    if (args.grad or args.grad_flow) and spec.loss is None:
        raise RnncError("--grad needs a `loss:` in the spec", spec.source.loc(()))
    graph = training_graph(spec, args.steps) if args.grad else unroll(spec, args.steps)
    if graph.steps is None and graph.follows_steps:
        raise RnncError("give --steps T (the spec has no unroll.steps)")
    report = optimize(graph, args.level, count_ops=True) if args.level is not None else None
    title = f"{spec.name}: {'training' if args.grad else 'forward'} graph, T = {graph.steps}" \
        + (f", -O{args.level}" if args.level is not None else "")
    if fmt in ("svg", "png"):
        draw = _plotting("draw", "draw")
        if not args.output:
            raise RnncError(f"--format {fmt} needs -o FILE")
        _write_with(args.output, lambda path: draw(graph, path, title), fmt)
        print(f"wrote {args.output}")
        return 0
    text = {"text": lambda: summarize(graph, title, report), "json": lambda: to_json(graph),
            "graphml": lambda: to_graphml(graph), "dot": lambda: to_dot(graph)}[fmt]()
    if args.output:
        save_text(args.output, text)
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _grad_flow(spec, args) -> int:
    import copy

    from .autodiff import training_graph
    from .inspection.grad_flow import gradient_norms, to_csv
    from .spec import UnrollSpec

    plot = _plotting("grad_flow", "plot")
    if not (args.params and args.inputs and args.output):
        raise RnncError("--grad-flow needs --params, --inputs and -o FILE.png")
    if spec.loss is None:
        raise RnncError("--grad-flow needs a `loss:` in the spec", spec.source.loc(()))
    data, steps = check_inputs(spec, load_npz(args.inputs, "inputs and targets"), args.steps,
                               args.inputs, with_targets=True)
    params = check_params(spec, load_npz(args.params, "parameters"), args.params)
    full = copy.copy(spec)
    full.unroll = UnrollSpec(spec.unroll.steps)  # the gradient as it is, untruncated
    norms = gradient_norms(training_graph(full, steps), spec.cells, params, data)
    fmt = Path(args.output).suffix.lstrip(".") or "png"
    _write_with(args.output, lambda path: plot(norms, path, f"{spec.name}: ‖dL/dh_t‖"), fmt)
    csv = str(Path(args.output).with_suffix(".csv"))
    save_text(csv, to_csv(norms))
    print(f"wrote {args.output} and {csv}")
    return 0


def _plotting(module: str, name: str):
    """A drawing function; pictures need matplotlib, an optional dependency."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise RnncError("pictures need matplotlib: pip install 'rnncompiler[plots]'") from None
    from importlib import import_module
    return getattr(import_module(f"rnncompiler.inspection.{module}"), name)


def _write_with(path: str, write, fmt: str) -> None:
    """Let ``write`` make a file, then move it into place (no partial file on failure)."""
    import tempfile

    folder = Path(path).parent
    with tempfile.TemporaryDirectory(dir=folder if str(folder) else ".") as temporary:
        made = Path(temporary) / f"picture.{fmt}"
        write(str(made))
        save_bytes(path, made.read_bytes())


def cmd_compile(args) -> int:
    spec = load_spec(args.spec, limits=not args.allow_large)
    params = None
    if args.params:
        params = check_params(spec, load_npz(args.params, "parameters"), args.params)
    if args.train and spec.loss is None:
        raise RnncError("--train needs a `loss:` in the spec", spec.source.loc(()))
    artifact = compile_spec(spec, args.backend, args.steps, train=args.train, params=params,
                            **_options(args))
    if hasattr(artifact, "source"):
        save_text(args.output, artifact.source)
    else:
        save_bytes(args.output, artifact.serialize(train=args.train))
    print(f"wrote {args.output}")
    return 0


def summary(spec: Spec, steps: int | None = None) -> str:
    """What ``rnnc check`` prints: inputs, layers with what they produce, parameters."""
    steps = steps or spec.unroll.steps
    uses_t = any(a.sequence and a.steps is None for a in spec.inputs.values())
    length = (f", T = {steps}" if steps else ", T from the inputs") if uses_t else ""
    lines = [f"{spec.file}: ok: {spec.name} ({spec.dtype}{length})"]
    width = max(len(n) for n in [*spec.inputs, *spec.targets, *(l.name for l in spec.layers)])
    for title, arrays in (("input", spec.inputs), ("target", spec.targets)):
        for name, array in arrays.items():
            kind = "sequence" if array.sequence else "vector"
            lengths = f", each example its own length ({name}.lengths)" if array.lengths else ""
            lines.append(f"  {title:<7}{name:<{width}}  {kind} of {array.features}{lengths}")
    for layer in spec.layers:
        if layer.type == "rnn":
            what = f"rnn {layer.cell} x {layer.units}, {layer.direction}, return {layer.returns}"
        elif layer.type == "dense":
            what = f"dense x {layer.units}, {layer.activation}"
        else:
            what = f"repeat x {layer.steps}"
        lines.append(f"  layer  {layer.name:<{width}}  {what} -> {layer.output.describe()}")
    infos = param_infos(spec)
    count = sum(int(_product(info.shape)) for info in infos)
    lines.append(f"  outputs {', '.join(spec.outputs)}")
    if spec.loss:
        lines.append(f"  loss   {spec.loss.type}({spec.loss.output}, {spec.loss.target})")
    lines.append(f"  params {count:,} in {len(infos)} arrays")
    return "\n".join(lines)


def _product(shape) -> int:
    result = 1
    for size in shape:
        result *= size
    return result


COMMANDS = {"check": cmd_check, "init": cmd_init, "run": cmd_run, "grad": cmd_grad,
            "gradcheck": cmd_gradcheck, "inspect": cmd_inspect, "compile": cmd_compile,
            "schema": cmd_schema, "train": cli_train.cmd_train,
            "export-params": cli_params.cmd_export_params,
            "import-params": cli_params.cmd_import_params, "import": cli_params.cmd_import}

if __name__ == "__main__":
    sys.exit(main())
