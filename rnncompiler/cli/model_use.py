"""``rnnc generate``, ``rnnc evaluate`` and ``rnnc predict``: using a trained model."""

from __future__ import annotations

import json
import sys

import numpy as np

from .. import check_inputs, check_params, compile_spec, load_npz, load_spec
from ..errors import RnncError
from ..generation import Generator, Sampling, generate_ids
from ..training.api import evaluate
from ..vocabulary import decode, encode, split_vocabularies
from ..writing import Outputs, check_writable, save_npz


def cmd_generate(args) -> int:
    spec = load_spec(args.spec, limits=not args.allow_large)
    params, vocabularies = split_vocabularies(spec, load_npz(args.params, "parameters"),
                                              args.params)
    generator = Generator(spec, check_params(spec, params, args.params), args.backend)
    fed = generator.plan.fed
    tokens = vocabularies.get(fed)
    if args.prompt is not None:
        if tokens is None:
            raise RnncError(f"{args.params} carries no vocabulary (vocabulary.{fed}) to read "
                            "the prompt with: give --prompt-ids")
        prompt = encode(args.prompt, tokens)
        stop = _stop(args.stop, lambda text: encode(text, tokens))
    else:
        prompt = _ids(args.prompt_ids or "", "--prompt-ids")
        stop = _stop(args.stop, lambda text: _ids(text, "--stop"))
    context = None
    samples = args.samples
    if args.context:
        arrays = load_npz(args.context, "context")  # a data file holds more: taken as needed
        context = {name: arrays[name] for name in generator.plan.context_inputs
                   if name in arrays}
        samples = len(next(iter(context.values()))) if context else 1
    elif generator.plan.context_inputs:
        raise RnncError(f"spec {spec.name} computes {', '.join(generator.plan.context_inputs)} "
                        "once before the first token: give them with --context C.npz")
    made = generate_ids(generator, prompt, args.length, samples=samples, seed=args.seed,
                        stop=stop, context=context,
                        sampling=Sampling(args.temperature, args.top_k, args.greedy))
    for i, row in enumerate(made):
        if i and not context:
            print()
        if tokens is not None and args.prompt is not None:
            print(args.prompt + decode(row, tokens))
        else:
            print(" ".join(map(str, prompt + row)))
    return 0


def _ids(text: str, option: str) -> list[int]:
    try:
        return [int(word) for word in text.replace(",", " ").split()]
    except ValueError:
        raise RnncError(f"{option}: expected ids separated by spaces, got {text!r}") from None


def _stop(text, parse):
    if text is None:
        return None
    found = parse(text)
    if len(found) != 1:
        raise RnncError(f"--stop: {text!r} is not one token")
    return found[0]


def cmd_evaluate(args) -> int:
    if args.json:
        check_writable(args.json, "the figures")
    spec = load_spec(args.spec, limits=not args.allow_large)
    params = check_params(spec, load_npz(args.params, "parameters"), args.params)
    figures = evaluate(spec, params, args.data, task=args.task, examples=args.examples,
                       steps=args.steps, seed=args.seed, batch_size=args.batch_size,
                       backend=args.backend)
    print(", ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
                    for key, value in figures.items()))
    if args.json:
        with Outputs() as outputs:
            outputs.text(args.json, json.dumps(figures, indent=1) + "\n", "the figures")
    return 0


def cmd_predict(args) -> int:
    check_writable(args.output)
    spec = load_spec(args.spec, limits=not args.allow_large)
    given = load_npz(args.params, "parameters")
    params = check_params(spec, given, args.params)
    vocabularies = split_vocabularies(spec, given, args.params)[1]
    inputs, steps = check_inputs(spec, load_npz(args.inputs, "inputs"), args.steps, args.inputs)
    outputs = compile_spec(spec, args.backend, steps).run(params, inputs)
    loss = spec.loss
    if loss is not None and loss.type == "cross_entropy" and loss.output in outputs:
        ids = np.asarray(outputs[loss.output]).argmax(-1)  # the most likely class
        outputs[f"{loss.output}.ids"] = ids
        tokens = vocabularies.get(loss.target)
        for row in ids.reshape(len(ids), -1) if tokens is not None else ():
            print(decode(row, tokens))
    save_npz(args.output, outputs)
    shapes = ", ".join(f"{name} {list(value.shape)}" for name, value in outputs.items())
    print(f"wrote {args.output}: {shapes}", file=sys.stderr)
    return 0
