"""The commands that compile and run a spec: check, init, run, grad, gradcheck, compile,
schema."""

from __future__ import annotations

import sys
from pathlib import Path

from .. import (
    Spec,
    check_inputs,
    check_params,
    compile_spec,
    init_params,
    load_npz,
    load_spec,
    param_infos,
)
from ..backend import available_backends, get_backend
from ..errors import RnncError
from ..gradcheck import gradcheck
from ..writing import check_writable, save_bytes, save_npz


def cmd_schema(args) -> int:
    from .. import schema_text

    sys.stdout.write(schema_text())
    return 0


def cmd_check(args) -> int:
    spec = load_spec(args.spec, limits=not args.allow_large)
    print(summary(spec, args.steps))
    return 0


def cmd_init(args) -> int:
    check_writable(args.output)
    spec = load_spec(args.spec, limits=not args.allow_large)
    params = init_params(spec, args.seed)
    save_npz(args.output, params)
    print(f"wrote {args.output}: {count_values(params)}")
    return 0


def cmd_run(args) -> int:
    check_writable(args.output)
    spec = load_spec(args.spec, limits=not args.allow_large)
    options = compile_options(args)
    inputs, steps = check_inputs(spec, load_npz(args.inputs, "inputs"), args.steps, args.inputs,
                                 state_io=args.state_io)
    params = check_params(spec, load_npz(args.params, "parameters"), args.params)
    outputs = compile_spec(spec, args.backend, steps, **options).run(params, inputs)
    save_npz(args.output, outputs)
    shapes = ", ".join(f"{name} {list(value.shape)}" for name, value in outputs.items())
    print(f"wrote {args.output}: {shapes}")
    return 0


def cmd_grad(args) -> int:
    check_writable(args.output)
    spec = load_spec(args.spec, limits=not args.allow_large)
    options = compile_options(args)
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


def cmd_compile(args) -> int:
    backend, inferred = compile_backend(args.output, args.backend), args.backend is None
    check_writable(args.output)
    spec = load_spec(args.spec, limits=not args.allow_large)
    params = None
    if args.params:
        params = check_params(spec, load_npz(args.params, "parameters"), args.params)
    if args.train and spec.loss is None:
        raise RnncError("--train needs a `loss:` in the spec", spec.source.loc(()))
    args.backend = backend
    artifact = compile_spec(spec, backend, args.steps, train=args.train, params=params,
                            **compile_options(args))
    save_bytes(args.output, artifact.serialize(train=args.train))
    print(f"wrote {args.output}" + (f" (backend {backend}, from the suffix)" if inferred else ""))
    return 0


def compile_backend(output: str, backend: str | None) -> str:
    """The backend of ``rnnc compile``: --backend, else told by -o's suffix (each backend
    says its own); a suffix that says another backend's is an error (an ONNX model in a
    .py file helps nobody)."""
    if backend is not None and backend not in available_backends():
        get_backend(backend)  # says which are installed, and what was meant
    by_suffix = {get_backend(name).suffix: name for name in sorted(available_backends())}
    by_suffix.pop("", None)
    suffix = Path(output).suffix.lower()
    told = by_suffix.get(suffix)
    if backend is None:
        if told is None:
            names = " or ".join(f"{s} ({b})" for s, b in by_suffix.items())
            raise RnncError(f"cannot tell the backend from '{output}': name it {names}, or "
                            "give --backend")
        return told
    if told is not None and told != backend:
        wanted = next((s for s, b in by_suffix.items() if b == backend), None)
        fix = f"name it {wanted}" if wanted else f"give another suffix than {suffix}"
        raise RnncError(f"-o {output} is where the {told} backend writes, but --backend is "
                        f"{backend}: {fix}, or drop --backend")
    return backend


def compile_options(args) -> dict:
    """The options of a command for compile_spec: the chosen backend's own, and ours. An
    option of another backend is an error."""
    own = {}
    for backend, flags in args.own_options.items():
        given = {dest: getattr(args, dest) for dest in flags if getattr(args, dest) is not None}
        if backend == args.backend:
            own = given
        elif given:
            raise RnncError(f"{flags[next(iter(given))]} is for --backend {backend}")
    return {**own, "state_io": args.state_io, "level": args.level}


def count_values(params: dict) -> str:
    """'1,234 values in 5 arrays': what a parameter file holds."""
    values = sum(int(value.size) for value in params.values())
    return (f"{values:,} value{'s' if values != 1 else ''} in {len(params)} "
            f"array{'s' if len(params) != 1 else ''}")


DROPOUT_KEYS = ("dropout", "recurrent_dropout")  # an rnn layer's, shown when set


def summary(spec: Spec, steps: int | None = None) -> str:
    """What ``rnnc check`` prints: inputs, layers with what they produce, parameters."""
    steps = steps or spec.unroll.steps
    uses_t = any(a.sequence and a.steps is None for a in spec.inputs.values())
    length = (f", T = {steps}" if steps else ", T from the inputs") if uses_t else ""
    every = spec.unroll.checkpoint
    if every is not None:  # (what training keeps: docs/bptt.md, Checkpointing)
        length += f", states kept every {'⌈√T⌉' if every == 'auto' else every} steps"
    lines = [f"{spec.file}: ok: {spec.name} ({spec.dtype}{length})"]
    width = max(len(n) for n in [*spec.inputs, *spec.targets, *(l.name for l in spec.layers)])
    for title, arrays in (("input", spec.inputs), ("target", spec.targets)):
        for name, array in arrays.items():
            kind = "sequence" if array.sequence else "vector"
            lengths = f", each example its own length ({name}.lengths)" if array.lengths else ""
            what = f"class ids ({array.classes} classes)" if array.classes else array.features
            lines.append(f"  {title:<7}{name:<{width}}  {kind} of {what}{lengths}")
    for layer in spec.layers:
        if layer.type == "rnn":
            what = f"rnn {layer.cell} x {layer.units}, {layer.direction}, return {layer.returns}"
            what += "".join(f", {key} {getattr(layer, key):g}" for key in DROPOUT_KEYS
                            if getattr(layer, key))
        elif layer.type == "dense":
            what = f"dense x {layer.units}, {layer.activation}"
        elif layer.type == "embedding":
            padding = f", padding id {layer.padding_id}" if layer.padding_id is not None else ""
            what = f"embedding of {layer.classes} ids x {layer.units}{padding}"
        elif layer.type == "dropout":
            what = f"dropout {layer.rate:g} (when training)"
        else:
            what = f"repeat x {layer.steps}"
        lines.append(f"  layer  {layer.name:<{width}}  {what} -> {layer.output.describe()}")
    infos = param_infos(spec)
    values = sum(int(_product(info.shape)) for info in infos)
    lines.append(f"  outputs {', '.join(spec.outputs)}")
    if spec.loss:
        lines.append(f"  loss   {spec.loss.type}({spec.loss.output}, {spec.loss.target})")
    lines.append(f"  params {values:,} values in {len(infos)} arrays")
    return "\n".join(lines)


def _product(shape) -> int:
    result = 1
    for size in shape:
        result *= size
    return result
