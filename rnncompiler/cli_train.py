"""``rnnc train``: the command's arguments and what it writes (the training itself is
``train.py``)."""

from __future__ import annotations

import json
import math

from .arrays import check_params, load_npz, save_npz, save_text
from .errors import RnncError
from .spec import load_spec
from .tasks import get_task, task_data
from .train import TrainOptions, log_csv, train


def add_parser(commands, common, steps_type) -> None:
    parser = commands.add_parser(
        "train", parents=[common], help="train the network (minibatch SGD or Adam)",
        description="Train SPEC on a data file or a built-in task; write the trained "
                    "parameters, a CSV log and JSON metrics.")
    parser.add_argument("spec", metavar="SPEC")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", metavar="D.npz", help="inputs and targets, [examples, ...]")
    source.add_argument("--task", metavar="NAME",
                        help="a built-in task: adding, memory, sine, parity, chars:FILE")
    parser.add_argument("-o", "--output", metavar="PARAMS.npz", help="the trained parameters")
    parser.add_argument("--epochs", type=steps_type, default=10)
    parser.add_argument("--batch-size", type=steps_type, default=32)
    parser.add_argument("--lr", type=float, default=0.01, help="learning rate (default 0.01)")
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="adam")
    parser.add_argument("--clip-norm", type=float, metavar="N",
                        help="scale the gradients down to a global norm of at most N")
    parser.add_argument("--seed", type=int, default=0,
                        help="initial parameters, task data, split and shuffles")
    parser.add_argument("--val-split", type=float, default=0.1, metavar="F",
                        help="share of the examples held out for validation (default 0.1)")
    parser.add_argument("--examples", type=steps_type, default=2000, metavar="N",
                        help="--task: training examples to make (default 2000; as many "
                             "again for the test)")
    parser.add_argument("--steps", type=steps_type, metavar="T",
                        help="--task: sequence length (default: unroll.steps)")
    parser.add_argument("--params", metavar="P.npz", help="start from these parameters")
    parser.add_argument("--checkpoint", metavar="DIR",
                        help="after every epoch: DIR/params.npz, optimizer.npz, log.csv")
    parser.add_argument("--resume", action="store_true",
                        help="continue from --checkpoint DIR")
    parser.add_argument("--metrics", metavar="FILE.json",
                        help="train_loss and val_loss per epoch, and the final test figures")
    parser.add_argument("--log", metavar="FILE.csv", help="one line per epoch")
    parser.add_argument("--backend", default="numpy", choices=("numpy", "onnx"),
                        help="numpy (default), or the ONNX training graph on onnxruntime")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def cmd_train(args) -> int:
    spec = load_spec(args.spec, limits=not args.allow_large)
    if not 0 <= args.val_split < 1:
        raise RnncError("--val-split must be from 0 to below 1")
    test = None
    if args.task:
        task = get_task(args.task)
        steps = args.steps or spec.unroll.steps
        if steps is None:
            raise RnncError("give --steps T for the task (the spec has no unroll.steps)")
        data = task_data(spec, task, args.examples, steps, args.seed)
        test = task_data(spec, task, args.examples, steps, args.seed + 1)
    else:
        data = load_npz(args.data, "training data")
    params = check_params(spec, load_npz(args.params, "parameters"), args.params) \
        if args.params else None
    options = TrainOptions(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                           optimizer=args.optimizer, clip_norm=args.clip_norm, seed=args.seed,
                           val_split=args.val_split, backend=args.backend,
                           checkpoint=args.checkpoint, resume=args.resume,
                           progress=not args.quiet)
    params, history, final = train(spec, data, options, test, params)
    if args.output:
        save_npz(args.output, params)
    if args.log:
        save_text(args.log, log_csv(history))
    if args.metrics:
        save_text(args.metrics, json.dumps(_finite({
            "train_loss": history.train_loss, "val_loss": history.val_loss,
            "val_metrics": history.val_metrics, "test": final}), indent=1) + "\n")
    shown = ", ".join(f"{k} {v:.4g}" for k, v in final.items())
    epochs = f"{args.epochs} epoch{'s' if args.epochs != 1 else ''}"
    print(f"trained {epochs}: final train loss {history.train_loss[-1]:.4g}"
          + (f"; {'test' if test is not None else 'validation'} {shown}" if shown else "")
          + (f"; wrote {args.output}" if args.output else ""))
    return 0


def _finite(value):
    """NaN (no validation examples) as null: JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


