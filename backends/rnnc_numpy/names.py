"""Variable names for generated source: readable, valid, and never clashing."""

from __future__ import annotations

import builtins
import keyword
import re

from .lowering import HELPERS

# names the generated module itself defines or uses: its own, and every helper a
# lowering calls (copied into the module from the ops' reference evaluations)
MODULE_NAMES = {"np", "DTYPE", "STEPS", "PARAMS", "INPUTS", "TARGETS", "params", "inputs",
                "batch", "steps", "t", "forward", "init_params", "initialize", "name_seed",
                "check_input", "outputs", "loss_and_grads", "train_step", "kept",
                "workspace", "release_workspace", "steps_first", "_workspaces", "_orthogonal"} | {
    name for names in HELPERS.values() for name in names}


def sanitize(text: str) -> str:
    """'RNN.fwd.h' -> 'RNN_fwd_h'; 'W @ x + b' -> 'W_x_b'."""
    name = re.sub(r"[^0-9A-Za-z_]+", "_", text).strip("_") or "v"
    return name if not name[0].isdigit() else f"v{name}"


class Names:
    """Allocates unique identifiers; scopes let loop temporaries be reused after a loop."""

    def __init__(self):
        self.taken = set(MODULE_NAMES)
        self.scopes: list[set] = []

    def take(self, wanted: str) -> str:
        base = sanitize(wanted)
        if keyword.iskeyword(base) or keyword.issoftkeyword(base) or hasattr(builtins, base):
            base += "_"
        name, n = base, 1
        while name in self.taken:
            n += 1
            name = f"{base}_{n}"
        self.taken.add(name)
        if self.scopes:
            self.scopes[-1].add(name)
        return name

    def open_scope(self) -> None:
        self.scopes.append(set())

    def close_scope(self) -> None:
        self.taken -= self.scopes.pop()
