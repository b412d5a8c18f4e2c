"""``rnnc inspect``: the unrolled graph as text, data or a picture, and gradient flow."""

from __future__ import annotations

import copy
import sys
import tempfile
from pathlib import Path

from .. import (
    UnrollSpec,
    check_inputs,
    check_params,
    load_npz,
    load_spec,
    optimize,
    training_graph,
    unroll,
)
from ..errors import RnncError
from ..inspection import summarize, to_dot, to_graphml, to_json
from ..writing import Outputs, check_writable, save_bytes, save_text
from .parser import FORMATS


def cmd_inspect(args) -> int:
    spec = load_spec(args.spec, limits=not args.allow_large)
    if args.grad_flow:
        return _grad_flow(spec, args)
    fmt = args.format or (Path(args.output).suffix.lstrip(".") if args.output else "text")
    if fmt not in FORMATS:
        raise RnncError(f"cannot tell the format from '{args.output}'; give --format")
    if args.output:
        check_writable(args.output)
    if args.grad and spec.loss is None:
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
        save_bytes(args.output, _picture(lambda path: draw(graph, path, title), fmt))
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
    from ..inspection.grad_flow import gradient_norms, to_csv

    plot = _plotting("grad_flow", "plot")
    if not (args.params and args.inputs and args.output):
        raise RnncError("--grad-flow needs --params, --inputs and -o FILE.png")
    if spec.loss is None:
        raise RnncError("--grad-flow needs a `loss:` in the spec", spec.source.loc(()))
    csv = str(Path(args.output).with_suffix(".csv"))
    check_writable(args.output)
    check_writable(csv)
    data, steps = check_inputs(spec, load_npz(args.inputs, "inputs and targets"), args.steps,
                               args.inputs, with_targets=True)
    params = check_params(spec, load_npz(args.params, "parameters"), args.params)
    full = copy.copy(spec)
    full.unroll = UnrollSpec(spec.unroll.steps)  # the gradient as it is, untruncated
    norms = gradient_norms(training_graph(full, steps), spec.cells, params, data)
    fmt = Path(args.output).suffix.lstrip(".") or "png"
    with Outputs() as outputs:
        outputs.add(args.output,
                    _picture(lambda path: plot(norms, path, f"{spec.name}: ‖dL/dh_t‖"), fmt))
        outputs.text(csv, to_csv(norms))
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


def _picture(draw, fmt: str) -> bytes:
    """The bytes of the picture that ``draw`` makes in a file of format ``fmt``."""
    with tempfile.TemporaryDirectory() as temporary:
        made = Path(temporary) / f"picture.{fmt}"
        draw(str(made))
        return made.read_bytes()
