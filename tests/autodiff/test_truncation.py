"""Truncated BPTT (docs/spec.md, `unroll.bptt`) against references built by explicit detaching.

The reference loops torch.nn.RNNCell / LSTMCell / GRUCell by hand (weights through
test_bptt_torch.TORCH_LAYOUT) and detaches recurrent states:

- `{window: k}`: grad = sum over t of dE_t/dparams, each from a forward pass in which
  the state entering step t-k+1 is detached (forward layers; for a backward layer, the
  state entering step t+k-1 from t+k). E_t is the loss's share from step t; for a loss
  on a `last` output only one error exists, made at the last step its layer processes:
  T-1 for a forward layer, 0 for a backward one (its state after step 0).
- `{chunk: k}`: one pass; no gradient crosses between positions j*k-1 and j*k in any
  recurrence (forward: the state entering step j*k is detached; backward: the state
  entering step j*k-1 from j*k).
"""

import numpy as np
import pytest
from test_bptt_torch import TORCH_LAYOUT, to_torch, torch_reference
from test_gradcheck import (
    OUT,
    STEPS,
    TAGS,
    check_grads_structure,
    make_case,
    rnn,
    spec_text,
    with_head,
)

import rnncompiler as rc

torch = pytest.importorskip("torch")

RTOL, ATOL = 1e-6, 1e-9
NETS = {  # name -> layers without the head; all forward-direction unless named
    "many_to_many": lambda cell: [rnn("R", cell, ret="sequence")],
    "many_to_one": lambda cell: [rnn("R", cell)],
    "backward_many_to_many": lambda cell: [rnn("R", cell, direction="backward", ret="sequence")],
    "stacked": lambda cell: [rnn("L1", cell, ret="sequence"),
                             rnn("L2", cell, "L1", ret="sequence", units=3)],
    "stacked_many_to_one": lambda cell: [rnn("L1", cell, ret="sequence"),
                                         rnn("L2", cell, "L1", units=3)],
    "backward_many_to_one": lambda cell: [rnn("R", cell, direction="backward")],
}


# ---------------------------------------------------------------- the reference

def cut_window(k, t):
    """Detach predicate (reverse, s) -> bool for the error made at step t."""
    return lambda reverse, s: s == (t + k - 1 if reverse else t - k + 1)


def cut_chunk(k):
    """Cut between positions j*k-1 and j*k (j >= 1), whichever way the layer runs."""
    def cut(reverse, s):
        boundary = s + 1 if reverse else s  # the position the state comes from / enters
        return boundary % k == 0 and 0 < boundary < STEPS
    return cut


def no_cut(reverse, s):
    return False


def error_step(layers):
    """Where the error on a vector output is made: the last step its rnn layer processes."""
    by_name = {layer["name"]: layer for layer in layers}
    layer = layers[-1]
    while layer["type"] != "rnn":
        layer = by_name[layer["input"]]
    return 0 if layer["direction"] == "backward" else STEPS - 1


def run_layer(layer, leaves, x, cut):
    """One rnn layer by a hand loop over torch cells; `cut(reverse, s)`: detach the
    state entering step s."""
    cell, units, (batch, steps, _) = layer["cell"], layer["units"], x.shape
    module = TORCH_LAYOUT[cell]["cell"](x.shape[-1], units).double()
    seqs, lasts = [], []
    for tag in TAGS[layer["direction"]]:
        reverse = layer["direction"] == "backward" or tag == "bwd."
        prefix = f"{layer['name']}.{tag}"
        ours = {k[len(prefix):]: v for k, v in leaves.items()
                if k.startswith(prefix) and "." not in k[len(prefix):]}
        weights = to_torch(cell, ours)
        state = torch.zeros(batch, units, dtype=torch.float64)
        state = (state, state.clone()) if cell == "lstm" else state
        outputs = [None] * steps
        for s in (reversed(range(steps)) if reverse else range(steps)):
            if cut(reverse, s):
                state = tuple(v.detach() for v in state) if cell == "lstm" else state.detach()
            state = torch.func.functional_call(module, weights, (x[:, s], state))
            outputs[s] = state[0] if cell == "lstm" else state
        seqs.append(torch.stack(outputs, 1))
        lasts.append(outputs[-1 if not reverse else 0])
    return torch.cat(seqs, -1) if layer["return"] == "sequence" else torch.cat(lasts, -1)


def step_losses(kind, out, target):
    """The loss's share of each step (a vector over t summing to the loss), or the loss
    itself for a vector output."""
    if kind == "mse":
        per = (out - target) ** 2
        return per.sum(dim=(0, 2)) / per.numel() if per.ndim == 3 else per.mean()
    per = -(target * torch.log_softmax(out, dim=-1)).sum(-1)
    return per.sum(0) / per.numel() if per.ndim == 2 else per.mean()


def truncated_reference(layers, loss, params, data, bptt):
    """(loss, grads keyed 'grad.<layer>.<param>') with explicit detaching for `bptt`."""
    leaves = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    targets = torch.tensor(data["y"])

    def forward(cut):
        values = {k: torch.tensor(v) for k, v in data.items()}
        for layer in layers:
            x = values[layer["input"]]
            if layer["type"] == "dense":
                values[layer["name"]] = x @ leaves[f"{layer['name']}.W"].T + \
                    leaves[f"{layer['name']}.b"]  # logits for softmax: the loss takes them
            else:
                values[layer["name"]] = run_layer(layer, leaves, x, cut)
        return step_losses(loss, values[layers[-1]["name"]], targets)

    if bptt == "full":
        passes = [(no_cut, lambda e: e.sum())]
    elif "chunk" in bptt:
        passes = [(cut_chunk(bptt["chunk"]), lambda e: e.sum())]
    else:
        k = bptt["window"]
        is_seq = forward(no_cut).ndim == 1
        passes = [(cut_window(k, t), lambda e, t=t: e[t] if is_seq else e)
                  for t in (range(STEPS) if is_seq else [error_step(layers)])]
    total = None
    for cut, share in passes:
        e = forward(cut)
        total = e.sum().detach() if total is None else total
        share(e).backward()
    grads = {f"grad.{k}": (v.grad if v.grad is not None else torch.zeros_like(v)).numpy()
             for k, v in leaves.items()}
    return total.numpy(), grads


def assert_truncation_matches(net, cell, bptt, loss="mse"):
    layers = with_head(net(cell), loss)
    spec, params, data = make_case(layers, loss, seed=11, bptt=bptt)
    want_loss, want = truncated_reference(layers, loss, params, data, bptt)
    got_loss, got = rc.loss_and_grads(spec, params, data)
    check_grads_structure(params, got_loss, got)
    np.testing.assert_allclose(got_loss, want_loss, rtol=RTOL, atol=ATOL, err_msg="loss")
    for key in sorted(want):
        np.testing.assert_allclose(got[key], want[key], rtol=RTOL, atol=ATOL,
                                   err_msg=f"{key} with bptt {bptt}")
    return params, data, got


# ---------------------------------------------------------------- self-checks of the reference

@pytest.mark.parametrize("net", sorted(NETS))
@pytest.mark.parametrize("cell", ["simple", "lstm"])
def test_reference_without_cuts_is_torch_full_gradient(cell, net):
    layers = with_head(NETS[net](cell))
    _, params, data = make_case(layers, seed=11)
    loss, full = torch_reference(layers, "mse", params, data)
    for bptt in ("full", {"window": STEPS}, {"window": STEPS + 2},
                 {"chunk": STEPS}, {"chunk": STEPS + 2}):
        got_loss, got = truncated_reference(layers, "mse", params, data, bptt)
        np.testing.assert_allclose(got_loss, loss, rtol=1e-12)
        for key in full:
            np.testing.assert_allclose(got[key], full[key], rtol=1e-10, atol=1e-13,
                                       err_msg=f"{key} {bptt}")
    for bptt in ({"window": 1}, {"window": 2}, {"chunk": 1}, {"chunk": 2}):
        _, cut = truncated_reference(layers, "mse", params, data, bptt)
        # the head is not recurrent: truncation leaves its gradient alone ...
        np.testing.assert_allclose(cut["grad.out.W"], full["grad.out.W"], rtol=1e-10)
        # ... but changes the recurrent weights'
        recurrent = [k for k in full if ".W_h" in k]
        assert any(not np.allclose(cut[k], full[k], rtol=1e-6) for k in recurrent), bptt


# ---------------------------------------------------------------- the implementation

@pytest.mark.parametrize("k", [1, 2, 3, STEPS, STEPS + 1])
@pytest.mark.parametrize("net", sorted(NETS))
@pytest.mark.parametrize("cell", ["simple", "lstm"])
def test_window_matches_detached_reference(cell, net, k):
    assert_truncation_matches(NETS[net], cell, {"window": k})


@pytest.mark.parametrize("k", [1, 2, 3, STEPS, STEPS + 1])
@pytest.mark.parametrize("net", sorted(NETS))
@pytest.mark.parametrize("cell", ["simple", "lstm"])
def test_chunk_matches_detached_reference(cell, net, k):
    assert_truncation_matches(NETS[net], cell, {"chunk": k})


@pytest.mark.parametrize("bptt", [{"window": 2}, {"chunk": 2}], ids=["window", "chunk"])
@pytest.mark.parametrize("net", ["many_to_many", "many_to_one"])
def test_truncation_with_cross_entropy(net, bptt):
    assert_truncation_matches(NETS[net], "lstm", bptt, loss="cross_entropy")


@pytest.mark.parametrize("mode", ["window", "chunk"])
@pytest.mark.parametrize("cell", ["simple", "lstm"])
def test_k_at_least_T_equals_full(cell, mode):
    layers = with_head(NETS["many_to_many"](cell))
    for k in (STEPS, STEPS + 3):
        spec, params, data = make_case(layers, seed=12, bptt={mode: k})
        full_spec, _, _ = make_case(layers, seed=12)
        loss, got = rc.loss_and_grads(spec, params, data)
        full_loss, full = rc.loss_and_grads(full_spec, params, data)
        np.testing.assert_allclose(loss, full_loss, rtol=1e-12)
        for key in full:
            np.testing.assert_allclose(got[key], full[key], rtol=1e-10, atol=1e-13, err_msg=key)


def test_window_one_simple_cell_keeps_one_step():
    """k = 1: h_t = tanh(W_xh x_t + W_hh h_{t-1} + b) with h_{t-1} a constant, so W_hh's
    gradient is sum_t (dE_t/da_t) h_{t-1}^T: not zero, not the full gradient."""
    layers = with_head(NETS["many_to_many"]("simple"))
    params, data, got = assert_truncation_matches(NETS["many_to_many"], "simple", {"window": 1})
    # the same sum written out in NumPy from the forward states
    h = np.zeros((data["x"].shape[0], params["R.W_hh"].shape[0]))
    states = [h]
    for t in range(STEPS):
        h = np.tanh(data["x"][:, t] @ params["R.W_xh"].T + h @ params["R.W_hh"].T
                    + params["R.b_h"])
        states.append(h)
    hs = np.stack(states[1:], 1)
    out = hs @ params["out.W"].T + params["out.b"]
    d_out = 2 * (out - data["y"]) / out.size
    d_pre = (d_out @ params["out.W"]) * (1 - hs ** 2)          # [batch, T, units]
    want = np.einsum("btu,btv->uv", d_pre, np.stack(states[:-1], 1))
    np.testing.assert_allclose(got["grad.R.W_hh"], want, rtol=RTOL, atol=ATOL)
    assert np.abs(want).max() > 1e-3
    _, full = torch_reference(layers, "mse", params, data)
    assert not np.allclose(got["grad.R.W_hh"], full["grad.R.W_hh"], rtol=1e-3)


@pytest.mark.parametrize("bptt", [{"window": 2}, {"chunk": 2}], ids=["window", "chunk"])
@pytest.mark.parametrize("net", ["many_to_many", "backward_many_to_many", "stacked"])
def test_truncation_with_lengths_is_each_example_cut_to_its_length(net, bptt):
    """With `lengths`, an example of length L trains as the same network run over its L
    steps alone (whose truncated gradient the tests above check against the detached
    reference): the loss counts its L steps, windows and chunks start where it starts.
    (A window's zero cotangents were once a new node per step: not a loop.)"""
    layers = with_head(NETS[net]("gru"))
    inputs = {"x": {"features": 2, "lengths": True}}
    steps, length = 7, 4
    spec = rc.load_spec_text(spec_text(layers, inputs=inputs, bptt=bptt, steps=steps))
    cut = rc.load_spec_text(spec_text(layers, bptt=bptt, steps=length))
    _, params, _ = make_case(layers, seed=3)
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((1, steps, 2)), rng.standard_normal((1, steps, OUT))
    loss, got = rc.loss_and_grads(spec, params, {"x": x, "y": y, "x.lengths": np.array([length])})
    want_loss, want = rc.loss_and_grads(cut, params, {"x": x[:, :length], "y": y[:, :length]})
    np.testing.assert_allclose(loss, want_loss, rtol=1e-12)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-10, atol=1e-13, err_msg=key)
