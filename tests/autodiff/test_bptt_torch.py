"""rc.loss_and_grads (bptt: full) against PyTorch autograd on the same float64 weights.

The networks are nn.RNN(tanh) / nn.LSTM / nn.GRU layers with nn.Linear heads. A
`backward` layer runs torch on the time-reversed sequence and reverses its outputs
back; `bidirectional` uses torch's bidirectional=True. Our parameters go to torch and
torch's gradients come back through one table, TORCH_LAYOUT.
"""

import zlib

import numpy as np
import pytest
from test_gradcheck import TAGS, check_grads_structure, inputs_of, make_case, rnn, with_head

import rnncompiler as rc

torch = pytest.importorskip("torch")
nn = torch.nn

RTOL, ATOL = 1e-6, 1e-9
TORCH_CELLS = ["simple", "lstm", "gru"]

# Our cell -> torch's layout. weight_ih / weight_hh stack W_x<g> / W_h<g> for the gates g
# in torch's order; bias_ih / bias_hh are made of the named biases block by block (None:
# a zero block whose gradient is not ours). torch GRU adds b_hr, b_hz into r and z like
# b_ir, b_iz, so ours go to bias_ih and those bias_hh blocks stay zero; b_hn sits inside
# r * (W_hn h + b_hn) exactly as torch's bias_hh n block does.
TORCH_LAYOUT = {
    "simple": {"module": lambda i, u, bi: nn.RNN(i, u, nonlinearity="tanh", batch_first=True,
                                                 bidirectional=bi),
               "cell": lambda i, u: nn.RNNCell(i, u, nonlinearity="tanh"),
               "gates": ["h"], "bias_ih": ["b_h"], "bias_hh": [None]},
    "lstm": {"module": lambda i, u, bi: nn.LSTM(i, u, batch_first=True, bidirectional=bi),
             "cell": nn.LSTMCell,
             "gates": ["i", "f", "c", "o"], "bias_ih": ["b_i", "b_f", "b_c", "b_o"],
             "bias_hh": [None] * 4},
    "gru": {"module": lambda i, u, bi: nn.GRU(i, u, batch_first=True, bidirectional=bi),
            "cell": nn.GRUCell,
            "gates": ["r", "z", "n"], "bias_ih": ["b_r", "b_z", "b_xn"],
            "bias_hh": [None, None, "b_hn"]},
}
TORCH_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def to_torch(cell, p):
    """Our parameters of one direction (name -> tensor) -> torch's (weight_ih, ...)."""
    layout = TORCH_LAYOUT[cell]
    zero = torch.zeros_like(p[layout["bias_ih"][0]])
    return {"weight_ih": torch.cat([p[f"W_x{g}"] for g in layout["gates"]]),
            "weight_hh": torch.cat([p[f"W_h{g}"] for g in layout["gates"]]),
            **{slot: torch.cat([zero if b is None else p[b] for b in layout[slot]])
               for slot in ("bias_ih", "bias_hh")}}


def from_torch(cell, g):
    """torch's gradients (weight_ih, ...) -> ours; a bias fed to several blocks sums them."""
    layout = TORCH_LAYOUT[cell]
    n = len(layout["gates"])
    out = {}
    for gate, wi, wh in zip(layout["gates"], g["weight_ih"].chunk(n), g["weight_hh"].chunk(n)):
        out[f"W_x{gate}"], out[f"W_h{gate}"] = wi, wh
    for slot in ("bias_ih", "bias_hh"):
        for name, block in zip(layout[slot], g[slot].chunk(n)):
            if name is not None:
                out[name] = out.get(name, 0) + block
    return out


def layer_params(params, key):
    """'<layer>.<param>' (or '<layer>.fwd.<param>') entries under prefix `key` + '.'."""
    prefix = key + "."
    return {k[len(prefix):]: v for k, v in params.items()
            if k.startswith(prefix) and "." not in k[len(prefix):]}


def torch_loss(kind, out, target):
    if kind == "mse":
        return ((out - target) ** 2).mean()
    return -(target * torch.log_softmax(out, dim=-1)).sum(-1).mean()


def torch_reference(layers, loss, params, data):
    """(loss, grads keyed 'grad.<layer>.<param>') by nn modules and autograd.

    `layers` are the dicts the spec was written from; a softmax dense layer gives its
    logits (the loss applies log_softmax)."""
    values = {k: torch.tensor(v) for k, v in data.items()}
    owners = []  # (our key prefix, cell or 'dense', {torch name: torch parameter})
    for layer in layers:
        name, x = layer["name"], values[layer["input"]]
        if layer["type"] == "dense":
            lin = nn.Linear(x.shape[-1], layer["units"]).double()
            with torch.no_grad():
                lin.weight.copy_(torch.tensor(params[f"{name}.W"]))
                lin.bias.copy_(torch.tensor(params[f"{name}.b"]))
            owners.append((name, "dense", {"W": lin.weight, "b": lin.bias}))
            values[name] = lin(x)
            continue
        cell, direction = layer["cell"], layer["direction"]
        module = TORCH_LAYOUT[cell]["module"](x.shape[-1], layer["units"],
                                              direction == "bidirectional").double()
        for tag, suffix in zip(TAGS[direction], ["_l0", "_l0_reverse"]):
            prefix = f"{name}.{tag}".rstrip(".")  # 'R' or 'R.fwd' / 'R.bwd'
            ours = {k: torch.tensor(v) for k, v in layer_params(params, prefix).items()}
            tparams = {t: getattr(module, t + suffix) for t in TORCH_NAMES}
            with torch.no_grad():
                for t, value in to_torch(cell, ours).items():
                    tparams[t].copy_(value)
            owners.append((prefix, cell, tparams))
        seq, final = module(x.flip(1) if direction == "backward" else x)
        final = final[0] if cell == "lstm" else final  # h_n: [directions, batch, units]
        if direction == "backward":
            seq = seq.flip(1)
        values[name] = seq if layer["return"] == "sequence" else torch.cat(list(final), -1)
    total = torch_loss(loss, values[layers[-1]["name"]], values["y"])
    total.backward()
    grads = {}
    for prefix, cell, tparams in owners:
        g = {t: p.grad for t, p in tparams.items()}
        for k, v in (g if cell == "dense" else from_torch(cell, g)).items():
            grads[f"grad.{prefix}.{k}"] = v.detach().numpy()
    return total.detach().numpy(), grads


def assert_matches_torch(layers, loss="mse", seed=0, **options):
    spec, params, data = make_case(layers, loss, seed=seed, **options)
    want_loss, want = torch_reference(layers, loss, params, data)
    assert set(want) == {f"grad.{k}" for k in params}, "the torch mapping misses parameters"
    got_loss, got = rc.loss_and_grads(spec, params, data)
    check_grads_structure(params, got_loss, got)
    np.testing.assert_allclose(got_loss, want_loss, rtol=RTOL, atol=ATOL, err_msg="loss")
    for key in sorted(want):
        np.testing.assert_allclose(got[key], want[key], rtol=RTOL, atol=ATOL, err_msg=key)
    return got


# ---------------------------------------------------------------- the tests

@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("ret", ["last", "sequence"], ids=["many_to_one", "many_to_many"])
@pytest.mark.parametrize("direction", ["forward", "backward", "bidirectional"])
@pytest.mark.parametrize("cell", TORCH_CELLS)
def test_single_layer_matches_torch(cell, direction, ret, loss):
    assert_matches_torch(with_head([rnn("R", cell, direction=direction, ret=ret)], loss),
                         loss, seed=zlib.crc32(f"{cell}{direction}{ret}{loss}".encode()))


@pytest.mark.parametrize("first,second", [
    (("lstm", "forward"), ("lstm", "forward")),
    (("gru", "bidirectional"), ("simple", "forward")),
    (("simple", "backward"), ("lstm", "bidirectional")),
    (("lstm", "bidirectional"), ("gru", "backward")),
])
@pytest.mark.parametrize("ret", ["last", "sequence"], ids=["many_to_one", "many_to_many"])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_stacked_layers_match_torch(first, second, ret, loss):
    (cell1, dir1), (cell2, dir2) = first, second
    layers = [rnn("L1", cell1, direction=dir1, ret="sequence"),
              rnn("L2", cell2, "L1", direction=dir2, ret=ret, units=3)]
    assert_matches_torch(with_head(layers, loss), loss, seed=7)


def test_torch_mapping_round_trips():
    """to_torch then from_torch is the identity on our parameters (gradients map back
    through the same blocks)."""
    rng = np.random.default_rng(0)
    for cell in TORCH_CELLS:
        layout = TORCH_LAYOUT[cell]
        names = [f"W_{s}{g}" for s in "xh" for g in layout["gates"]]
        names += [b for b in layout["bias_ih"] + layout["bias_hh"] if b]
        ours = {k: torch.tensor(rng.standard_normal((4, 2) if k.startswith("W_x") else
                                                    (4, 4) if k.startswith("W_h") else (4,)))
                for k in names}
        back = from_torch(cell, to_torch(cell, ours))
        assert set(back) == set(ours)
        for k in ours:
            assert torch.equal(back[k], ours[k]), (cell, k)


@pytest.mark.parametrize("ret", ["last", "sequence"])
@pytest.mark.parametrize("direction", ["forward", "backward", "bidirectional"])
@pytest.mark.parametrize("cell", TORCH_CELLS)
def test_torch_reference_loss_matches_rc_run(cell, direction, ret):
    """Self-check of the reference: its loss equals the mse of rc.run's output (gate
    order, bias blocks, reversal and the `last` of each direction are right)."""
    layers = with_head([rnn("R", cell, direction=direction, ret=ret)])
    spec, params, data = make_case(layers, seed=3)
    want_loss, _ = torch_reference(layers, "mse", params, data)
    out = rc.run(spec, params, inputs_of(spec, data))["out"]
    np.testing.assert_allclose(np.mean((out - data["y"]) ** 2), want_loss, rtol=1e-12)
