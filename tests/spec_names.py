"""Name pools of the spec generator (spec_strategies.py, cell_strategies.py) and the
draw of a fresh name from one."""

from __future__ import annotations

from hypothesis import strategies as st

# 1.1 reads as booleans or null (written quoted), Python keywords and builtins, names the
# generated code might use itself, and names that join with a parameter's into another
# (layer RNN_W + param xh and layer RNN + param W_xh are both RNN_W_xh).

YAML_WORDS = frozenset({"on", "off", "yes", "no", "y", "n", "null", "true", "false", "On"})

INPUT_NAMES = ("x", "src", "tgt_in", "image", "h0", "on", "yes", "y", "t", "W", "np",
               "x_lengths", "seq", "ctx", "lambda", "_")
TARGET_NAMES = ("y", "target", "labels", "off", "null", "n", "yb", "T", "grad", "steps")
LAYER_NAMES = ("RNN", "RNN_W", "enc", "dec", "out", "dense", "h", "c", "W", "b", "head",
               "no", "true", "loss", "grad", "np", "range", "None", "def", "x_t", "batch",
               "DTYPE", "params", "inputs", "outputs", "saved_RNN_h", "L1", "L2", "RNN_1")
CELL_NAMES = ("mycell", "peephole", "minimal", "cell", "cell_1", "false", "rnn", "gated")
STATE_NAMES = ("h", "c", "s", "m", "state", "h2", "W", "y", "z_s", "mask", "out")
PARAM_NAMES = ("W", "b", "U", "V", "W_x", "W_h", "W_xh", "b_h", "xh", "p", "gain", "A",
               "B1", "W_hh", "bias", "np", "DTYPE", "Wc", "input")
# (names the compiler's own places could take: mask, keep, out of variable lengths; i_f,
# a12, g_i of fused gates; carry_h of a backward loop)
LOCAL_NAMES = ("a", "z", "g", "i", "f", "o", "r", "u", "pre", "gate", "cand", "k", "xs",
               "np", "range", "steps", "h_1", "units", "mask", "keep", "out", "i_f", "a12",
               "g_i", "carry_h")


def fresh(draw, pool, taken: set[str], prefix: str) -> str:
    """A name from ``pool`` not in ``taken`` (or ``prefix<n>`` once the pool is used up),
    added to ``taken``."""
    free = [name for name in pool if name not in taken]
    name = draw(st.sampled_from(free)) if free else f"{prefix}{len(taken)}"
    while name in taken:  # the generated fallback met a user of the same name
        name += "_"
    taken.add(name)
    return name
