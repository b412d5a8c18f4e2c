"""What an input or a layer produces, as the layers' typing sees it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ValueType:
    """What an input or a layer produces: kind, features, and length (None = T)."""

    sequence: bool
    features: int  # for class ids: the number of classes (the width of their one-hot form)
    steps: int | None = None
    ids: bool = False  # class ids (an input or target with `classes: N`), not numbers

    def describe(self) -> str:
        what = f"class ids ({self.features} classes)" if self.ids else None
        if not self.sequence:
            return f"a vector of {what or self.features}"
        length = "T" if self.steps is None else str(self.steps)
        return f"a sequence of {length} steps x {what or self.features}" if what is None \
            else f"a sequence of {length} steps of {what}"
