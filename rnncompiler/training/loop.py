"""``rnnc train``: minibatch training of any spec with its compiled gradients.

One epoch shuffles the training examples (a generator seeded by ``(seed, epoch)``, so a
resumed run shuffles as an uninterrupted one), takes a step per batch with SGD or Adam
(gradients clipped to a global norm if asked; dropout's masks drawn for each batch by a
generator seeded by ``(seed, epoch, batch)``), then measures the loss and metrics on
the validation examples. A checkpoint folder (``checkpoint.py``) holds the parameters, the
optimizer's state and the log after every epoch; ``resume`` continues from it. Ctrl-C
stops after the current step and keeps what was reached, mid-epoch included, so that a
resumed run computes what an uninterrupted one would have. A loss that is not finite
stops training with a clear error, the checkpoint keeping the last good epoch.
"""

from __future__ import annotations

import csv
import io
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from ..api import compile_spec
from ..arrays import check_inputs
from ..build.dropout import batch_rng, sample_masks, unit_masks
from ..build.params import init_params
from ..errors import RnncError
from ..frontend.spec import Spec
from ..ir.ops import sequence_mask
from . import checkpoint
from .checkpoint import History, Position


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
    steps: int | None = None  # T (default: unroll.steps, else the data's)


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
        mask = _counted(spec, chunk, predicted)
        if spec.loss.type == "cross_entropy":
            ids = truth if spec.targets[target].classes is not None else truth.argmax(-1)
            score_sum += float(((predicted.argmax(-1) == ids) * mask).sum())
            counted += float(mask.sum())
        else:
            score_sum += float((((predicted - truth) ** 2) * mask[..., None]).sum())
            counted += float(mask.sum()) * truth.shape[-1]
    metric = "accuracy" if spec.loss.type == "cross_entropy" else "mse"
    return {"loss": loss_sum / rows, metric: score_sum / counted}


def _counted(spec: Spec, chunk: dict, predicted: np.ndarray) -> np.ndarray:
    """1 at the target's steps that count (its own lengths, else its input's), as the
    loss counts them; every step of a target without lengths."""
    keys = [f"{spec.loss.target}.lengths"] + [f"{name}.lengths" for name in spec.inputs]
    key = next((k for k in keys if k in chunk), None)
    if predicted.ndim != 3 or key is None:
        return np.ones(predicted.shape[:-1])
    return sequence_mask(chunk[key], predicted)[..., 0]


def train(spec: Spec, data: dict, options: TrainOptions, test: dict | None = None,
          params: dict | None = None) -> tuple[dict, History, dict]:
    """Train on ``data`` (inputs and targets, checked); returns (parameters, history,
    final figures on ``test`` or, without it, on the validation examples). Ctrl-C stops
    after the current step: the parameters reached are returned (and kept in the
    checkpoint, to resume from), ``history.stopped`` says where, and no final figures."""
    if spec.loss is None:
        raise RnncError("training needs a `loss:` in the spec", spec.source.loc(()))
    data, steps = check_inputs(spec, data, options.steps, with_targets=True)
    # dropout: none where the loss is measured; each training step draws its own masks
    data.update(unit_masks(spec, len(data[spec.loss.target]), steps))
    training, validation = split(data, options.val_split, options.seed)
    artifact = compile_spec(spec, options.backend, steps, train=True)
    params = params if params is not None else init_params(spec, options.seed)
    optimizer = Optimizer(options.optimizer, options.lr, params)
    history, position = History(), Position()
    run = {"optimizer": options.optimizer, "batch_size": options.batch_size,
           "seed": options.seed}
    if options.resume:
        if options.checkpoint is None:
            raise RnncError("--resume needs --checkpoint DIR, the folder of the earlier run")
        params, state, position, history = checkpoint.load(options.checkpoint, spec, run)
        optimizer.load(state)
        if position.epochs_done >= options.epochs:
            raise RnncError(f"{options.checkpoint} already holds {position.epochs_done} "
                            f"epochs; --epochs counts them (give --epochs "
                            f"{position.epochs_done + options.epochs} for {options.epochs} more)")
    count = len(next(iter(training.values())))
    clock = _Clock(options.epochs - position.epochs_done)
    with _StopOnInterrupt() as interrupt:
        while position.epochs_done < options.epochs:
            epoch = position.epochs_done
            rng = np.random.default_rng([options.seed, epoch])
            for index, batch in enumerate(batches(training, options.batch_size, rng)):
                if index < position.batches_done:
                    continue  # done before the run was interrupted
                batch.update(sample_masks(spec, len(batch[spec.loss.target]), steps,
                                          batch_rng(options.seed, epoch, index)))
                with np.errstate(all="ignore"):  # a diverging run gets one message, below
                    loss, grads = artifact.loss_and_grads(params, batch)
                if not np.isfinite(loss) or not all(np.all(np.isfinite(g))
                                                    for g in grads.values()):
                    kept = (f"; {options.checkpoint} keeps epoch {epoch}"
                            if options.checkpoint and epoch else "")
                    raise RnncError(f"the loss became {float(loss)} in epoch {epoch + 1}: "
                                    f"training diverged (lower --lr, or set --clip-norm){kept}")
                params = optimizer.step(params, clip(grads, options.clip_norm))
                size = len(next(iter(batch.values())))
                position.batches_done = index + 1
                position.loss_sum, position.rows = position.loss_sum + float(loss) * size, \
                    position.rows + size
                if options.progress and sys.stderr.isatty():
                    _progress(epoch, options.epochs, position.rows, count,
                              position.loss_sum / position.rows, clock)
                if interrupt.asked:
                    break
            if interrupt.asked and position.rows < count:
                history.stopped = (f"in epoch {epoch + 1}, after {position.rows} of {count} "
                                   "examples")
                break
            _end_epoch(spec, artifact, params, validation, options, history, position, clock)
            if options.checkpoint is not None:
                _save(options, params, optimizer, position, history, run)
            if interrupt.asked:
                history.stopped = f"after epoch {epoch + 1}"
                break
    if history.stopped:
        if options.checkpoint is not None:
            _save(options, params, optimizer, position, history, run)
        return params, history, {}
    if test is not None:
        validation = check_inputs(spec, test, steps, with_targets=True)[0]
    final = evaluate_metrics(spec, artifact, params, validation, options.batch_size) \
        if validation else {}
    return params, history, final


def _end_epoch(spec, artifact, params, validation, options, history, position, clock) -> None:
    """Validation figures, the history and the epoch's line; the position moves on."""
    epoch, mean = position.epochs_done, position.loss_sum / position.rows
    figures = evaluate_metrics(spec, artifact, params, validation, options.batch_size) \
        if validation else {}
    history.train_loss.append(mean)
    history.val_loss.append(figures.get("loss", float("nan")))
    history.val_metrics.append(figures)
    clock.epoch_done()
    if options.progress:
        shown = ("validation " + ", ".join(f"{k} {v:.4g}" for k, v in figures.items())
                 if figures else "no validation examples (--val-split 0)")
        start = "\r" if sys.stderr.isatty() else ""
        print(f"{start}epoch {epoch + 1}/{options.epochs}: train loss {mean:.4g}; {shown} "
              f"({clock.describe()})", file=sys.stderr)
    position.epochs_done, position.batches_done = epoch + 1, 0
    position.loss_sum, position.rows = 0.0, 0


def _save(options, params, optimizer, position, history, run) -> None:
    checkpoint.save(options.checkpoint, params, optimizer.state(), position, history, run,
                    log_csv(history))


class _Clock:
    """Seconds per epoch, and what is left of the run at that pace."""

    def __init__(self, epochs: int):
        self.left, self.started, self.last = epochs, time.monotonic(), None

    def epoch_done(self) -> None:
        now = time.monotonic()
        self.last, self.started, self.left = now - self.started, now, self.left - 1

    def eta(self, fraction: float) -> float:
        """Seconds left with ``fraction`` of the current epoch done."""
        elapsed = time.monotonic() - self.started
        per_epoch = self.last if self.last is not None else elapsed / max(fraction, 1e-9)
        return per_epoch * (1 - fraction) + per_epoch * (self.left - 1)

    def describe(self) -> str:
        left = f"; about {_duration(self.last * self.left)} left" if self.left else ""
        return f"{_duration(self.last)}{left}"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes < 60 else \
        f"{minutes // 60} h {minutes % 60:02d} min"


class _StopOnInterrupt:
    """Ctrl-C while training: the first asks to stop after the current step (``asked``);
    a second stops at once. Signals reach only the main thread; elsewhere, nothing."""

    def __init__(self):
        self.asked, self.previous = False, None

    def __enter__(self) -> _StopOnInterrupt:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, number, frame) -> None:
        if self.asked:
            raise KeyboardInterrupt
        self.asked = True
        print("\nstopping after this step (Ctrl-C again to stop at once, saving nothing)",
              file=sys.stderr)

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _progress(epoch: int, epochs: int, done: int, count: int, loss: float,
              clock: _Clock) -> None:
    width = 24
    filled = int(width * done / count)
    print(f"\repoch {epoch + 1}/{epochs} [{'#' * filled}{'.' * (width - filled)}] "
          f"{done}/{count} loss {loss:.4g}, about {_duration(clock.eta(done / count))} left ",
          end="", file=sys.stderr, flush=True)


def log_csv(history: History) -> str:
    out = io.StringIO()
    keys = sorted({k for m in history.val_metrics for k in m} - {"loss"})
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["epoch", "train_loss", "val_loss", *(f"val_{k}" for k in keys)])
    for i, (train_loss, val_loss) in enumerate(zip(history.train_loss, history.val_loss)):
        metrics = history.val_metrics[i]
        writer.writerow([i + 1, f"{train_loss:.8g}", "" if val_loss != val_loss else
                         f"{val_loss:.8g}",
                         *(f"{metrics.get(k, float('nan')):.8g}" for k in keys)])
    return out.getvalue()


