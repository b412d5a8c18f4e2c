"""What a user feels: seconds per epoch of `rnnc train` (each backend) against a plain
PyTorch training loop over the same model, optimizer, batch and data.

Two tasks:

- ``adding``: the adding problem at T = 100, an LSTM of 32 units and a dense head on its
  last state (mse), 5,000 examples;
- ``chars``: the character language model of ``specs/char_lm.yaml`` (embedding 32, LSTM
  128, 56 classes, T = 32, cross-entropy at every step), 2,000 windows of the sonnets.

Both: Adam (lr 0.01), batch 32, shuffled by a seeded generator, no validation split (so
each epoch is the training steps alone, as in the PyTorch loop), float32. The time of an
epoch is the difference of a long and a short run over their difference in epochs (so
compiling the spec, or creating the onnxruntime session, is not counted), the median of
``--rounds`` rounds; the implementations alternate within a round. Each run is a process
of its own (idle BLAS and OpenMP threads of one library would disturb the next).

    python benchmarks/train_epoch.py [--rounds 3] [--tasks adding chars] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ADDING = """\
rnnc: 1
name: adding_lstm
inputs:
  x: {features: 2}
targets:
  y: {features: 1, sequence: false}
layers:
  - {name: R, type: rnn, cell: lstm, units: 32, input: x}
  - {name: out, type: dense, units: 1, input: R}
loss: {type: mse, output: out, target: y}
unroll: {steps: 100}
"""
SHORT, LONG = 1, 4  # epochs of the two runs whose difference is timed
EXAMPLES = {"adding": 5000, "chars": 2000}
BATCH, LR, SEED = 32, 0.01, 0


def task_spec_and_data(task: str):
    import rnncompiler as rc
    from rnncompiler.training.tasks import get_task, task_data

    if task == "adding":
        spec = rc.load_spec_text(ADDING, "adding.yaml")
        data = task_data(spec, get_task("adding"), EXAMPLES[task], 100, SEED)
    else:
        spec = rc.load_spec(ROOT / "specs" / "char_lm.yaml")
        source = get_task(f"chars:{ROOT / 'specs' / 'data' / 'sonnets.txt'}")
        data = task_data(spec, source, EXAMPLES[task], spec.unroll.steps, SEED)
    return spec, data


def rnnc_seconds(task: str, backend: str, epochs: int) -> float:
    from rnncompiler.training.loop import TrainOptions, train

    spec, data = task_spec_and_data(task)
    options = TrainOptions(epochs=epochs, batch_size=BATCH, lr=LR, seed=SEED, val_split=0.0,
                           backend=backend, progress=False)
    start = time.perf_counter()
    train(spec, data, options)
    return time.perf_counter() - start


def torch_seconds(task: str, epochs: int) -> float:
    import torch
    from torch import nn

    torch.manual_seed(SEED)
    spec, data = task_spec_and_data(task)
    if task == "adding":
        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm, self.out = nn.LSTM(2, 32, batch_first=True), nn.Linear(32, 1)

            def forward(self, x):
                return self.out(self.lstm(x)[0][:, -1])

        def loss_of(model, batch):
            return nn.functional.mse_loss(model(batch["x"]), batch["y"])
    else:
        (name, spec_input), = spec.inputs.items()
        (target, _), = spec.targets.items()
        classes = spec_input.classes

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = nn.Embedding(classes, 32)
                self.lstm, self.out = nn.LSTM(32, 128, batch_first=True), nn.Linear(128, classes)

            def forward(self, ids):
                return self.out(self.lstm(self.embed(ids))[0])

        def loss_of(model, batch):
            return nn.functional.cross_entropy(model(batch[name]).reshape(-1, classes),
                                               batch[target].reshape(-1))
    model = Model()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    tensors = {k: torch.tensor(v) for k, v in data.items()}
    count = len(next(iter(data.values())))
    start = time.perf_counter()
    rng = np.random.default_rng(SEED)
    for _ in range(epochs):
        order = rng.permutation(count)
        for first in range(0, count, BATCH):
            pick = torch.tensor(order[first:first + BATCH])
            loss = loss_of(model, {k: v[pick] for k, v in tensors.items()})
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start


def one(task: str, who: str, epochs: int) -> float:
    """One run in a process of its own; its seconds."""
    out = subprocess.run([sys.executable, __file__, "--one", task, who, str(epochs)],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", nargs="+", default=["adding", "chars"])
    parser.add_argument("--who", nargs="+", default=["numpy", "onnx", "torch"])
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        task, who, epochs = args.one
        import torch

        torch.set_num_threads(2)
        seconds = torch_seconds(task, int(epochs)) if who == "torch" else \
            rnnc_seconds(task, who, int(epochs))
        print(seconds)
        return
    results = []
    for task in args.tasks:
        epochs = {who: [] for who in args.who}
        for round_index in range(args.rounds):
            order = args.who[round_index % len(args.who):] + args.who[:round_index % len(args.who)]
            for who in order:
                short, long = one(task, who, SHORT), one(task, who, LONG)
                epochs[who].append((long - short) / (LONG - SHORT))
        row = {"task": task, "examples": EXAMPLES[task], "rounds": args.rounds,
               "epoch_s": {who: statistics.median(v) for who, v in epochs.items()},
               "epoch_s_all": epochs}
        if "torch" in epochs:
            row["ratio_to_torch"] = {who: row["epoch_s"][who] / row["epoch_s"]["torch"]
                                     for who in epochs if who != "torch"}
        results.append(row)
        print(f"{task}: " + ", ".join(f"{who} {s:.3f} s/epoch" for who, s in
                                        row["epoch_s"].items())
              + ("; ratio to PyTorch " + ", ".join(f"{w} {r:.2f}" for w, r in
                                                   row.get("ratio_to_torch", {}).items())))
    if args.json:
        Path(args.json).write_text(json.dumps({"short_epochs": SHORT, "long_epochs": LONG,
                                               "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
