"""``rnnc train``: minibatch training of any spec with its compiled gradients.

One epoch shuffles the training examples (a generator seeded by ``(seed, epoch)``, so a
resumed run shuffles as an uninterrupted one), takes a step per batch with SGD or Adam
(gradients clipped to a global norm if asked), then measures the loss and metrics on
the validation examples. A checkpoint folder holds the parameters, the optimizer's
state and the log after every epoch; ``resume`` continues from it. A loss that is not
finite stops training with a clear error, the checkpoint keeping the last good epoch.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .api import compile_spec
from .arrays import check_inputs, save_npz, save_text
from .errors import RnncError
from .ops import sequence_mask
from .params import init_params
from .spec import Spec


@dataclass
class TrainOptions:
    epochs: int = 10
    batch_size: int = 32
    lr: float = 0.01
    optimizer: str = "adam"  # sgd | adam
    clip_norm: float | None = None
    seed: int = 0
    val_split: float = 0.1
    backend: str = "numpy"
    checkpoint: str | None = None
    resume: bool = False
    progress: bool = True


@dataclass
class History:
    train_loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_metrics: list = field(default_factory=list)


class Optimizer:
    """SGD, or Adam (Kingma & Ba 2015: beta1 0.9, beta2 0.999, eps 1e-8) with bias
    correction; its state is arrays, saved and restored with a checkpoint."""

    def __init__(self, kind: str, lr: float, params: dict):
        if kind not in ("sgd", "adam"):
            raise RnncError(f"unknown optimizer '{kind}'; use sgd or adam")
        self.kind, self.lr, self.step_count = kind, lr, 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()} if kind == "adam" else {}
        self.v = {k: np.zeros_like(v) for k, v in params.items()} if kind == "adam" else {}

    def step(self, params: dict, grads: dict) -> dict:
        self.step_count += 1
        if self.kind == "sgd":
            return {k: v - self.lr * grads[f"grad.{k}"] for k, v in params.items()}
        b1, b2, eps, n = 0.9, 0.999, 1e-8, self.step_count
        updated = {}
        for key, value in params.items():
            g = grads[f"grad.{key}"]
            self.m[key] = b1 * self.m[key] + (1 - b1) * g
            self.v[key] = b2 * self.v[key] + (1 - b2) * g * g
            m_hat = self.m[key] / (1 - b1 ** n)
            v_hat = self.v[key] / (1 - b2 ** n)
            updated[key] = (value - self.lr * m_hat / (np.sqrt(v_hat) + eps)).astype(value.dtype)
        return updated

    def state(self) -> dict:
        arrays = {"step_count": np.array(self.step_count)}
        arrays.update({f"m.{k}": v for k, v in self.m.items()})
        arrays.update({f"v.{k}": v for k, v in self.v.items()})
        return arrays

    def load(self, arrays: dict) -> None:
        self.step_count = int(arrays["step_count"])
        self.m = {k[2:]: v for k, v in arrays.items() if k.startswith("m.")}
        self.v = {k[2:]: v for k, v in arrays.items() if k.startswith("v.")}


def clip(grads: dict, norm: float | None) -> dict:
    """Scale every gradient by one factor so that their global norm is at most ``norm``."""
    if norm is None:
        return grads
    total = math.sqrt(sum(float(np.sum(np.square(g))) for g in grads.values()))
    if total <= norm:
        return grads
    return {k: g * (norm / total) for k, g in grads.items()}


def split(data: dict, fraction: float, seed: int) -> tuple[dict, dict]:
    """(training, validation) examples: a seeded permutation, ``fraction`` held out."""
    count = len(next(iter(data.values())))
    order = np.random.default_rng([seed, 2**31]).permutation(count)
    held = round(count * fraction) if count > 1 else 0
    held = min(held, count - 1)
    return ({k: v[order[held:]] for k, v in data.items()},
            {k: v[order[:held]] for k, v in data.items()} if held else {})


def batches(data: dict, size: int, rng):
    count = len(next(iter(data.values())))
    order = rng.permutation(count)
    for start in range(0, count, size):
        pick = order[start:start + size]
        yield {k: v[pick] for k, v in data.items()}


def evaluate_metrics(spec: Spec, artifact, params: dict, data: dict, batch: int) -> dict:
    """The loss and, on the loss's output, mse or accuracy (argmax over features), over
    the steps that count."""
    target, rows, loss_sum, score_sum, counted = spec.loss.target, 0, 0.0, 0.0, 0.0
    for chunk in batches(data, batch, np.random.default_rng(0)):
        loss, _ = artifact.loss_and_grads(params, chunk)
        truth = chunk[target]
        rows += len(truth)
        loss_sum += float(loss) * len(truth)
        predicted = artifact.run(params, chunk)[spec.loss.output]
        mask = _counted(spec, chunk, truth)
        if spec.loss.type == "cross_entropy":
            score_sum += float(((predicted.argmax(-1) == truth.argmax(-1)) * mask).sum())
            counted += float(mask.sum())
        else:
            score_sum += float((((predicted - truth) ** 2) * mask[..., None]).sum())
            counted += float(mask.sum()) * truth.shape[-1]
    metric = "accuracy" if spec.loss.type == "cross_entropy" else "mse"
    return {"loss": loss_sum / rows, metric: score_sum / counted}


def _counted(spec: Spec, chunk: dict, truth: np.ndarray) -> np.ndarray:
    """1 at the target's steps that count (its own lengths, else its input's), as the
    loss counts them; every step of a target without lengths."""
    keys = [f"{spec.loss.target}.lengths"] + [f"{name}.lengths" for name in spec.inputs]
    key = next((k for k in keys if k in chunk), None)
    if truth.ndim != 3 or key is None:
        return np.ones(truth.shape[:-1])
    return sequence_mask(chunk[key], truth)[..., 0]


def train(spec: Spec, data: dict, options: TrainOptions, test: dict | None = None,
          params: dict | None = None) -> tuple[dict, History, dict]:
    """Train on ``data`` (inputs and targets, checked); returns (parameters, history,
    final figures on ``test`` or, without it, on the validation examples)."""
    if spec.loss is None:
        raise RnncError("training needs a `loss:` in the spec", spec.source.loc(()))
    data, steps = check_inputs(spec, data, None, with_targets=True)
    training, validation = split(data, options.val_split, options.seed)
    artifact = compile_spec(spec, options.backend, steps, train=True)
    params = params if params is not None else init_params(spec, options.seed)
    optimizer = Optimizer(options.optimizer, options.lr, params)
    history, first_epoch = History(), 0
    folder = Path(options.checkpoint) if options.checkpoint else None
    if options.resume:
        if folder is None or not (folder / "state.json").exists():
            raise RnncError("--resume needs a --checkpoint folder written by an earlier run")
        params, first_epoch, history = _load_checkpoint(folder, optimizer)
    for epoch in range(first_epoch, options.epochs):
        rng = np.random.default_rng([options.seed, epoch])
        total, rows = 0.0, 0
        count = len(next(iter(training.values())))
        for batch in batches(training, options.batch_size, rng):
            with np.errstate(all="ignore"):  # a diverging run gets one message, below
                loss, grads = artifact.loss_and_grads(params, batch)
            if not np.isfinite(loss) or not all(np.all(np.isfinite(g)) for g in grads.values()):
                kept = f"; {folder} keeps epoch {epoch}" if folder and epoch else ""
                raise RnncError(f"the loss became {float(loss)} in epoch {epoch + 1}: training "
                                f"diverged (lower --lr, or set --clip-norm){kept}")
            params = optimizer.step(params, clip(grads, options.clip_norm))
            size = len(next(iter(batch.values())))
            total, rows = total + float(loss) * size, rows + size
            if options.progress and sys.stderr.isatty():
                _progress(epoch, options.epochs, rows, count, total / rows)
        history.train_loss.append(total / rows)
        figures = evaluate_metrics(spec, artifact, params, validation, options.batch_size) \
            if validation else {"loss": float("nan")}
        history.val_loss.append(figures["loss"])
        history.val_metrics.append(figures)
        if options.progress:
            shown = ", ".join(f"{k} {v:.4g}" for k, v in figures.items())
            start = "\r" if sys.stderr.isatty() else ""
            print(f"{start}epoch {epoch + 1}/{options.epochs}: train loss {total / rows:.4g}; "
                  f"validation {shown}", file=sys.stderr)
        if folder is not None:
            _save_checkpoint(folder, params, optimizer, epoch + 1, history)
    if test is not None:
        validation = check_inputs(spec, test, steps, with_targets=True)[0]
    final = evaluate_metrics(spec, artifact, params, validation, options.batch_size) \
        if validation else {}
    return params, history, final


def _progress(epoch: int, epochs: int, done: int, count: int, loss: float) -> None:
    width = 24
    filled = int(width * done / count)
    print(f"\repoch {epoch + 1}/{epochs} [{'#' * filled}{'.' * (width - filled)}] "
          f"{done}/{count} loss {loss:.4g}", end="", file=sys.stderr, flush=True)


def log_csv(history: History) -> str:
    out = io.StringIO()
    keys = sorted({k for m in history.val_metrics for k in m} - {"loss"})
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["epoch", "train_loss", "val_loss", *(f"val_{k}" for k in keys)])
    for i, (train_loss, val_loss) in enumerate(zip(history.train_loss, history.val_loss)):
        metrics = history.val_metrics[i]
        writer.writerow([i + 1, f"{train_loss:.8g}", f"{val_loss:.8g}",
                         *(f"{metrics.get(k, float('nan')):.8g}" for k in keys)])
    return out.getvalue()


def _save_checkpoint(folder: Path, params: dict, optimizer: Optimizer, epochs_done: int,
                     history: History) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_npz(folder / "params.npz", params)
    save_npz(folder / "optimizer.npz", optimizer.state())
    save_text(folder / "log.csv", log_csv(history))
    save_text(folder / "state.json", json.dumps({
        "epochs_done": epochs_done, "train_loss": history.train_loss,
        "val_loss": history.val_loss, "val_metrics": history.val_metrics}, indent=1) + "\n")


def _load_checkpoint(folder: Path, optimizer: Optimizer) -> tuple[dict, int, History]:
    state = json.loads((folder / "state.json").read_text())
    with np.load(folder / "params.npz") as saved:
        params = dict(saved)
    with np.load(folder / "optimizer.npz") as saved:
        optimizer.load(dict(saved))
    history = History(state["train_loss"], state["val_loss"], state["val_metrics"])
    return params, state["epochs_done"], history
