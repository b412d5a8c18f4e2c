"""A training checkpoint: a folder with the parameters, the optimizer's state, the log, and
where training stands (``state.json``), written after every epoch and when training is
interrupted, so that ``--resume`` continues exactly where it stopped: the same next batch,
the same optimizer moments, the same numbers as a run that was never stopped.

Resuming checks the folder against the run: the parameters against the spec (the same
messages as ``--params``), and the optimizer; a run stopped inside an epoch also needs
the batch size and seed that drew that epoch's batches.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..arrays import check_params, load_npz
from ..errors import Location, RnncError
from ..frontend.spec import Spec
from ..writing import Outputs

STATE = "state.json"


@dataclass
class Position:
    """Where training stands: epochs done, and batches done of the next one with the sum
    of their losses (weighted by batch size) and the examples they held."""

    epochs_done: int = 0
    batches_done: int = 0
    loss_sum: float = 0.0
    rows: int = 0


@dataclass
class History:
    train_loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_metrics: list = field(default_factory=list)
    stopped: str | None = None  # where an interrupted run stopped, in words


def save(folder, params: dict, optimizer_state: dict, position: Position, history: History,
         run: dict, log: str) -> None:
    """Every file of the checkpoint, together (a crash leaves the last one whole)."""
    folder = Path(folder)
    state = {"epochs_done": position.epochs_done, "batches_done": position.batches_done,
             "loss_sum": position.loss_sum, "rows": position.rows, **run,
             "train_loss": history.train_loss, "val_loss": history.val_loss,
             "val_metrics": history.val_metrics}
    with Outputs() as outputs:
        outputs.npz(folder / "params.npz", params, "the checkpoint")
        outputs.npz(folder / "optimizer.npz", optimizer_state, "the checkpoint")
        outputs.text(folder / "log.csv", log, "the checkpoint")
        outputs.text(folder / STATE, json.dumps(state, indent=1, allow_nan=True) + "\n",
                     "the checkpoint")


def load(folder, spec: Spec, run: dict) -> tuple[dict, dict, Position, History]:
    """(parameters, optimizer state, position, history) of the checkpoint in ``folder``,
    checked against ``spec`` and this run's ``optimizer``, ``batch_size`` and ``seed``."""
    folder = Path(folder)
    where = Location(str(folder / STATE))
    if not (folder / STATE).is_file():
        raise RnncError("--resume needs a --checkpoint folder written by an earlier run "
                        f"(no {STATE} in it)", Location(str(folder)))
    try:
        state = json.loads((folder / STATE).read_text())
        position = Position(int(state["epochs_done"]), int(state.get("batches_done", 0)),
                            float(state.get("loss_sum", 0.0)), int(state.get("rows", 0)))
        history = History(list(state["train_loss"]), list(state["val_loss"]),
                          list(state["val_metrics"]))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise RnncError(f"not a checkpoint's state: {error}", where) from None
    params = check_params(spec, load_npz(folder / "params.npz", "checkpoint parameters"),
                          str(folder / "params.npz"))
    optimizer_state = load_npz(folder / "optimizer.npz", "optimizer state")
    trained_with = state.get("optimizer") or ("adam" if any(
        key.startswith("m.") for key in optimizer_state) else "sgd")
    if trained_with != run["optimizer"]:
        raise RnncError(f"the checkpoint was trained with --optimizer {trained_with}; resume "
                        f"with it (--optimizer {run['optimizer']} would drop its state), or "
                        "start a new checkpoint", where)
    if position.batches_done:
        for option in ("batch_size", "seed"):
            if option in state and state[option] != run[option]:
                flag = "--" + option.replace("_", "-")
                raise RnncError(
                    f"the checkpoint stopped inside epoch {position.epochs_done + 1}, whose "
                    f"batches {flag} {state[option]} drew; resume with {flag} "
                    f"{state[option]}",
                    where)
    return params, optimizer_state, position, history
