"""Two end-to-end language tasks against PyTorch on the same budget, in one process:

- ``reverse``: specs/reverse.yaml (an encoder-decoder on class ids) trained with teacher
  forcing by ``rc.train``, decoded greedily by ``rc.generate`` (the encoder once, then
  the decoder one token at a time): exact-match accuracy (every digit right) and token
  accuracy on fresh test strings; the same network in PyTorch (nn.Embedding, nn.LSTM
  encoder whose (h_n, c_n) start the nn.LSTM decoder, nn.Linear), the same Adam, batch,
  epochs and examples, decoded greedily the same way.
- ``chars``: specs/char_lm.yaml on specs/data/sonnets.txt: test loss (nats per
  character) on windows of the text's last tenth, which training never reads, against
  the same LSTM language model in PyTorch; and a sample of each.

    python benchmarks/seq2seq_reverse.py [--epochs 10] [--examples 5000] [--task reverse]
        [--json benchmarks/results/language_tasks.json]

Seconds are wall time on this machine (2 cores), both trainings in the same process.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import rnncompiler as rc
from rnncompiler.training.reverse import START
from rnncompiler.training.tasks import get_task, task_data

ROOT = Path(__file__).resolve().parent.parent
REVERSE = ROOT / "specs" / "reverse.yaml"
CHARS = ROOT / "specs" / "char_lm.yaml"
SONNETS = ROOT / "specs" / "data" / "sonnets.txt"


def reverse_rnnc(args) -> dict:
    spec = rc.load_spec(REVERSE)
    start = time.perf_counter()
    trained = rc.train(spec, task="reverse", epochs=args.epochs, examples=args.examples,
                       batch_size=args.batch, lr=args.lr, seed=args.seed, val_split=0.0)
    seconds = time.perf_counter() - start
    test = task_data(spec, get_task("reverse"), args.test, spec.unroll.steps,
                     args.seed + 1, part="test")
    made = np.array(rc.generate(spec, trained.params, [START], spec.unroll.steps,
                                greedy=True, context={"digits": test["digits"]}))
    return _scores("rnnc (NumPy backend)", made, test["reversed"], seconds)


def reverse_torch(args) -> dict:
    import torch
    from torch import nn

    torch.manual_seed(args.seed)
    spec = rc.load_spec(REVERSE)
    steps, classes = spec.unroll.steps, 11

    class Reverser(nn.Module):
        def __init__(self):
            super().__init__()
            self.read, self.write = nn.Embedding(classes, 16), nn.Embedding(classes, 16)
            self.encoder = nn.LSTM(16, 64, batch_first=True)
            self.decoder = nn.LSTM(16, 64, batch_first=True)
            self.scores = nn.Linear(64, classes)

        def forward(self, digits, previous, state=None):
            if state is None:
                _, state = self.encoder(self.read(digits))
            out, state = self.decoder(self.write(previous), state)
            return self.scores(out), state

    model = Reverser()
    data = task_data(spec, get_task("reverse"), args.examples, steps, args.seed)
    seconds = _torch_train(model, data, args, lambda batch: nn.functional.cross_entropy(
        model(batch["digits"], batch["previous"])[0].reshape(-1, classes),
        batch["reversed"].reshape(-1)))
    test = task_data(spec, get_task("reverse"), args.test, steps, args.seed + 1, part="test")
    with torch.no_grad():
        digits = torch.tensor(test["digits"])
        token = torch.full((len(digits), 1), START)
        state, made = None, []
        for _ in range(steps):
            scores, state = model(digits, token, state)
            token = scores[:, -1].argmax(-1, keepdim=True)
            made.append(token)
    return _scores("PyTorch (nn.LSTM)", torch.cat(made, 1).numpy(), test["reversed"], seconds)


def _torch_train(model, data: dict, args, loss_of) -> float:
    """Adam on ``loss_of(batch)`` over shuffled batches of ``data`` for ``args.epochs``, as
    ``rc.train`` does; the seconds it took."""
    import torch

    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    tensors = {k: torch.tensor(v) for k, v in data.items()}
    start = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    for _ in range(args.epochs):
        order = rng.permutation(args.examples)
        for first in range(0, args.examples, args.batch):
            pick = torch.tensor(order[first:first + args.batch])
            loss = loss_of({k: v[pick] for k, v in tensors.items()})
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start


def _scores(who: str, made: np.ndarray, truth: np.ndarray, seconds: float) -> dict:
    return {"who": who, "exact_match": float((made == truth).all(axis=1).mean()),
            "token_accuracy": float((made == truth).mean()), "seconds": round(seconds, 1)}


def chars_rnnc(args) -> dict:
    spec = rc.load_spec(CHARS)
    task = f"chars:{SONNETS}"
    start = time.perf_counter()
    trained = rc.train(spec, task=task, epochs=args.epochs, examples=args.examples,
                       batch_size=args.batch, lr=args.lr, seed=args.seed, val_split=0.0)
    seconds = time.perf_counter() - start
    figures = rc.evaluate(spec, trained.params, task=task, examples=args.test, seed=args.seed)
    sample = rc.generate(spec, trained.params, "Shall I ", 200, temperature=0.8,
                         seed=args.seed)
    return {"who": "rnnc (NumPy backend)", "test_loss": figures["loss"],
            "test_accuracy": figures["accuracy"], "seconds": round(seconds, 1),
            "sample": "Shall I " + sample}


def chars_torch(args) -> dict:
    import torch
    from torch import nn

    torch.manual_seed(args.seed)
    spec = rc.load_spec(CHARS)
    task = get_task(f"chars:{SONNETS}")
    classes, steps = len(task.vocabulary), spec.unroll.steps

    class CharLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(classes, 32)
            self.lstm = nn.LSTM(32, 128, batch_first=True)
            self.logits = nn.Linear(128, classes)

        def forward(self, ids, state=None):
            out, state = self.lstm(self.embed(ids), state)
            return self.logits(out), state

    model = CharLM()
    data = task_data(spec, task, args.examples, steps, args.seed)
    seconds = _torch_train(model, data, args, lambda batch: nn.functional.cross_entropy(
        model(batch["text"])[0].reshape(-1, classes), batch["next"].reshape(-1)))
    test = task_data(spec, task, args.test, steps, args.seed + 1, part="test")
    with torch.no_grad():
        logits, _ = model(torch.tensor(test["text"]))
        loss = nn.functional.cross_entropy(logits.reshape(-1, classes),
                                           torch.tensor(test["next"]).reshape(-1))
        accuracy = (logits.argmax(-1).numpy() == test["next"]).mean()
    return {"who": "PyTorch (nn.LSTM)", "test_loss": float(loss), "test_accuracy":
            float(accuracy), "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=("reverse", "chars", "both"), default="both")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--examples", type=int, default=5000)
    parser.add_argument("--test", type=int, default=1000, help="test examples")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    results = {}
    if args.task in ("reverse", "both"):
        results["reverse"] = [reverse_rnnc(args), reverse_torch(args)]
        for row in results["reverse"]:
            print(f"reverse | {row['who']} | exact match {row['exact_match']:.3f} | token "
                  f"accuracy {row['token_accuracy']:.3f} | {row['seconds']} s", flush=True)
    if args.task in ("chars", "both"):
        results["chars"] = [chars_rnnc(args), chars_torch(args)]
        for row in results["chars"]:
            print(f"chars | {row['who']} | test loss {row['test_loss']:.3f} | accuracy "
                  f"{row['test_accuracy']:.3f} | {row['seconds']} s", flush=True)
        print(results["chars"][0]["sample"])
    if args.json:
        given = {k: v for k, v in vars(args).items() if k != "json"}
        Path(args.json).write_text(json.dumps({"args": given, **results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
