"""The task ``reverse`` (``rnnc train --task reverse``): a sequence-to-sequence task for
an encoder-decoder, as translation is, on synthetic tokens: read a string of T digits,
write it reversed.

The spec has two inputs of class ids and one target, all with the 11 classes of
``VOCABULARY``: the digits (read by the encoder), and the previous token of the answer
(read by the decoder: ``^``, the start token, then the answer shifted by one — teacher
forcing), and the target is the answer. At generation the decoder is fed its own output
instead (``rnnc generate --context`` with the digits, prompt ``^``).
"""

from __future__ import annotations

import numpy as np

from ..errors import RnncError
from ..frontend.spec import Spec

VOCABULARY = list("0123456789^")
START = VOCABULARY.index("^")


class Reverse:
    name = "reverse"
    vocabulary = VOCABULARY

    def arrays(self, spec: Spec, count: int, steps: int, rng: np.random.Generator,
               part: str = "train") -> dict:
        """``count`` examples named for ``spec`` (``part``: a test set is drawn from its
        own seed, as every task's)."""
        source, previous, target = self.names(spec)
        digits = rng.integers(0, 10, (count, steps))
        answer = digits[:, ::-1]
        shifted = np.concatenate([np.full((count, 1), START), answer[:, :-1]], axis=1)
        return {source: digits, previous: shifted, target: answer.copy()}

    def names(self, spec: Spec) -> tuple[str, str, str]:
        """(the digits, the previous token, the answer) of ``spec``, or what it lacks."""
        from ..generation import plan_generation

        classes = len(VOCABULARY)
        arrays = {**spec.inputs, **spec.targets}
        fits = (len(spec.inputs) == 2 and len(spec.targets) == 1 and spec.loss is not None
                and spec.loss.type == "cross_entropy"
                and all(a.classes == classes and a.sequence for a in arrays.values()))
        if not fits:
            raise RnncError(f"task reverse needs two inputs and one target, sequences of "
                            f"class ids with `classes: {classes}` (the digits and '^'), and "
                            "loss cross_entropy: the digits, the previous token of the "
                            "answer (teacher forcing) and the answer", spec.source.loc(()))
        previous = plan_generation(spec).fed  # the input the answer is computed from
        source = next(name for name in spec.inputs if name != previous)
        return source, previous, next(iter(spec.targets))
