"""The adding problem (Hochreiter & Schmidhuber 1997) with `rnnc train`: final test MSE
of `simple`, `lstm` and `gru` layers at T = 50, 100, 200 on the same budget, against the
trivial baseline (predicting 1: MSE about 0.167), with full BPTT and a truncated column.

    python benchmarks/adding_problem.py [--epochs 15] [--examples 2000] [--units 32]
        [--steps 50 100 200] [--json results.json]

Each run: Adam, lr 0.01, batch 32, gradients clipped to norm 1, seed 0; a test set of
as many fresh examples. Prints a markdown table as rows finish.
"""

from __future__ import annotations

import argparse
import json
import time

import rnncompiler as rc
from rnncompiler.training.loop import TrainOptions, train
from rnncompiler.training.tasks import get_task, task_data

SPEC = """\
rnnc: 1
name: adding_{cell}
inputs:
  x: {{features: 2}}
targets:
  y: {{features: 1, sequence: false}}
layers:
  - {{name: R, type: rnn, cell: {cell}, units: {units}, input: x}}
  - {{name: out, type: dense, units: 1, input: R}}
loss: {{type: mse, output: out, target: y}}
unroll: {{steps: {steps}, bptt: {bptt}}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--steps", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--cells", nargs="+", default=["simple", "lstm", "gru"])
    parser.add_argument("--truncate", type=int, default=20,
                        help="the truncated column: bptt {chunk: K} (default 20)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    task = get_task("adding")
    results = []
    print("| T | cell | test MSE, full BPTT | test MSE, chunk "
          f"{args.truncate} | baseline | seconds |")
    print("|---|---|---|---|---|---|")
    for steps in args.steps:
        for cell in args.cells:
            row = {"steps": steps, "cell": cell}
            start = time.perf_counter()
            for column, bptt in (("full", "full"), ("chunk", f"{{chunk: {args.truncate}}}")):
                spec = rc.load_spec_text(SPEC.format(cell=cell, units=args.units, steps=steps,
                                                     bptt=bptt))
                data = task_data(spec, task, args.examples, steps, seed=0)
                test = task_data(spec, task, args.examples, steps, seed=1, part="test")
                options = TrainOptions(epochs=args.epochs, batch_size=32, lr=0.01,
                                       clip_norm=1.0, seed=0, progress=False)
                _, history, final = train(spec, data, options, test)
                row[column] = final["mse"]
                row[f"{column}_train_loss"] = history.train_loss
            row["baseline"] = float(((test["y"] - 1.0) ** 2).mean())
            row["seconds"] = time.perf_counter() - start
            results.append(row)
            print(f"| {steps} | {cell} | {row['full']:.4f} | {row['chunk']:.4f} | "
                  f"{row['baseline']:.4f} | {row['seconds']:.0f} |", flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"settings": vars(args), "results": results}, out, indent=1)


if __name__ == "__main__":
    main()
