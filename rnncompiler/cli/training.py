"""``rnnc train``: what it reads and writes around the training itself (``train.py``).

Every output is checked before training starts, so that an hour of training is never lost
to a path that cannot be written; the parameters go beside the spec unless ``-o`` says
where; Ctrl-C saves what was reached and says how to go on.
"""

from __future__ import annotations

import json
import math
import shlex
import sys
from pathlib import Path

from .. import check_inputs, check_params, load_npz, load_spec
from ..errors import Location, RnncError
from ..training.loop import TrainOptions, log_csv, train
from ..training.tasks import get_task, task_data, task_vocabularies
from ..vocabulary import as_arrays, split_vocabularies
from ..writing import Outputs, check_writable, save_npz


def cmd_train(args) -> int:
    output = args.output or default_output(args.spec)
    for path, what in ((output, "the parameters"), (args.log, "the log"),
                       (args.metrics, "the metrics")):
        if path:
            check_writable(path, what)
    if args.checkpoint:
        if Path(args.checkpoint).exists() and not Path(args.checkpoint).is_dir():
            raise RnncError("--checkpoint names a folder; this is a file",
                            Location(args.checkpoint))
        check_writable(Path(args.checkpoint) / "params.npz", "the checkpoint")
    spec = load_spec(args.spec, limits=not args.allow_large)
    test = None
    vocabularies = {}
    if args.params:
        given = load_npz(args.params, "parameters")
        params = check_params(spec, given, args.params)
        vocabularies = split_vocabularies(spec, given, args.params)[1]
    else:
        params = None
    if args.task:
        task = get_task(args.task)
        steps = args.steps or spec.unroll.steps
        if steps is None:
            raise RnncError("give --steps T for the task (the spec has no unroll.steps)")
        data = task_data(spec, task, args.examples, steps, args.seed)
        test = task_data(spec, task, args.examples, steps, args.seed + 1, part="test")
        vocabularies.update(task_vocabularies(spec, task))
    else:
        data = load_npz(args.data, "training data")
        check_inputs(spec, data, args.steps, args.data, with_targets=True)  # says which file
        data, carried = split_vocabularies(spec, data, args.data)
        vocabularies.update(carried)
    if not args.quiet:
        where = "" if args.output else " (-o to choose)"
        print(f"training {spec.name} for {args.epochs} epoch{'s' if args.epochs != 1 else ''}: "
              f"the parameters go to {output}{where}", file=sys.stderr)
    options = TrainOptions(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                           optimizer=args.optimizer, clip_norm=args.clip_norm, seed=args.seed,
                           val_split=args.val_split, backend=args.backend,
                           checkpoint=args.checkpoint, resume=args.resume,
                           progress=not args.quiet, steps=args.steps)
    params, history, final = train(spec, data, options, test, params)
    keep({**params, **as_arrays(vocabularies)}, output, args.spec)  # first: the work is kept
    with Outputs() as outputs:
        if args.log:
            outputs.text(args.log, log_csv(history), "the log")
        if args.metrics:
            outputs.text(args.metrics, json.dumps(_finite({
                "train_loss": history.train_loss, "val_loss": history.val_loss,
                "val_metrics": history.val_metrics, "test": final,
                "stopped": history.stopped}), indent=1) + "\n", "the metrics")
    if history.stopped:
        print(f"interrupted {history.stopped}: wrote {output}; {how_to_continue(args, output)}",
              file=sys.stderr)
        return 130
    shown = ", ".join(f"{k} {v:.4g}" for k, v in final.items())
    done = len(history.train_loss)
    print(f"trained {done} epoch{'s' if done != 1 else ''}: final train loss "
          f"{history.train_loss[-1]:.4g}"
          + (f"; {'test' if test is not None else 'validation'} {shown}" if shown else "")
          + f"; wrote {output}")
    return 0


def keep(params: dict, output: str, spec: str) -> None:
    """Write the trained parameters to ``output``; if that fails after all (a disk that
    filled up while training), beside the spec or in the working folder instead, and say
    where, so that the training is not lost."""
    try:
        save_npz(output, params, "the parameters")
    except RnncError as error:
        for place in (default_output(spec), Path(spec).stem + ".params.npz"):
            fallback = _unused(place)
            if fallback == output:
                continue
            try:
                save_npz(fallback, params, "the parameters")
            except RnncError:
                continue
            raise RnncError(f"{error.message}; the trained parameters are in {fallback} "
                            "instead", error.location) from None
        raise


def _unused(path: str) -> str:
    """``path``, or ``a.1.npz``, ``a.2.npz``... if it is taken: a fallback clobbers nothing."""
    base, number = Path(path), 0
    while Path(path).exists():
        number += 1
        path = str(base.with_name(f"{base.stem}.{number}{base.suffix}"))
    return path


def default_output(spec: str) -> str:
    """Where the trained parameters go without -o: beside the spec, named after it."""
    path = Path(spec)
    return str(path.with_name(f"{path.stem}.params.npz"))


def how_to_continue(args, output: str) -> str:
    """The command that goes on from where an interrupted run stopped."""
    words = list(sys.argv[1:]) if sys.argv[1:2] == ["train"] else None
    if args.checkpoint:
        again = words if words is not None else ["train", args.spec, "..."]
        if "--resume" not in again:
            again = [*again, "--resume"]
        return f"resume with: rnnc {shlex.join(again)}"
    return (f"go on with: rnnc train {shlex.quote(args.spec)} ... --params "
            f"{shlex.quote(output)} (--checkpoint DIR also keeps the optimizer's state and "
            "the place in the epoch)")


def _finite(value):
    """NaN (no validation examples) as null: JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
