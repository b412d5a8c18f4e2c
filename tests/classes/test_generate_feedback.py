"""Generation from ``feedback`` decoders (specs/caption_generate.yaml: an image fed at
every step; specs/translate_generate.yaml: an encoder's final states start the decoder):
each drawn token, one-hot, is fed back in place of the dense layer's output. Greedy
decoding against PyTorch cells looping the same way; ``--state-io`` takes what is fed
back before the first step."""

import numpy as np
import pytest
from conftest import ROOT

import rnncompiler as rc
from rnncompiler.generation_plan import plan_generation

torch = pytest.importorskip("torch")
nn = torch.nn


def weights(params, prefix, gates, biases):
    def cat(names):
        return torch.tensor(np.concatenate([params[f"{prefix}.{n}"] for n in names]))

    return cat([f"W_x{g}" for g in gates]), cat([f"W_h{g}" for g in gates]), cat(biases)


def case(name, seed=2):
    spec = rc.load_spec(ROOT / "specs" / f"{name}.yaml")
    rng = np.random.default_rng(seed)
    params = {k: v + rng.normal(0, 0.4, v.shape) for k, v in rc.init_params(spec).items()}
    data = dict(np.load(ROOT / "specs" / "data" / f"{name}.npz"))
    return spec, params, {k: data[k] for k in spec.inputs}


def greedy(cell, state, head, fixed, steps, batch, output_state=lambda s: s):
    """Torch: a cell fed [fixed, one-hot of the last token] (zeros first), greedy."""
    fed = torch.zeros(batch, head.out_features, dtype=torch.float64)
    made = []
    for _ in range(steps):
        x = torch.cat([fixed, fed], -1) if fixed is not None else fed
        state = cell(x, state)
        token = torch.softmax(head(output_state(state)), -1).argmax(-1)
        made.append(token)
        fed = nn.functional.one_hot(token, head.out_features).double()
    return torch.stack(made, 1).numpy().tolist()


@pytest.mark.parametrize("backend", ["numpy", "onnx"])
def test_caption_generate_matches_torch(backend):
    spec, params, context = case("caption_generate")
    cell = nn.GRUCell(42, 64).double()
    head = nn.Linear(64, 10).double()
    w_ih, w_hh, b_ih = weights(params, "decoder", "rzn", ["b_r", "b_z", "b_xn"])
    with torch.no_grad():
        cell.weight_ih.copy_(w_ih)
        cell.weight_hh.copy_(w_hh)
        cell.bias_ih.copy_(b_ih)
        cell.bias_hh.copy_(torch.cat([torch.zeros(128, dtype=torch.float64),
                                      torch.tensor(params["decoder.b_hn"])]))
        head.weight.copy_(torch.tensor(params["words.W"]))
        head.bias.copy_(torch.tensor(params["words.b"]))
        image = torch.tensor(context["image"], dtype=torch.float64)
        want = greedy(cell, torch.zeros(len(image), 64, dtype=torch.float64), head, image, 9,
                      len(image))
    got = rc.generate(spec, params, [], 9, greedy=True, context=context, backend=backend)
    assert got == want


@pytest.mark.parametrize("backend", ["numpy", "onnx"])
def test_translate_generate_matches_torch(backend):
    spec, params, context = case("translate_generate")
    encoder = nn.LSTM(8, 24, batch_first=True).double()
    cell = nn.LSTMCell(6, 24).double()
    head = nn.Linear(24, 6).double()
    gates, biases = "ifco", ["b_i", "b_f", "b_c", "b_o"]
    with torch.no_grad():
        for module, prefix, suffix in ((encoder, "encoder", "_l0"), (cell, "decoder", "")):
            w_ih, w_hh, b_ih = weights(params, prefix, gates, biases)
            getattr(module, f"weight_ih{suffix}").copy_(w_ih)
            getattr(module, f"weight_hh{suffix}").copy_(w_hh)
            getattr(module, f"bias_ih{suffix}").copy_(b_ih)
            getattr(module, f"bias_hh{suffix}").zero_()
        head.weight.copy_(torch.tensor(params["words.W"]))
        head.bias.copy_(torch.tensor(params["words.b"]))
        _, (h, c) = encoder(torch.tensor(context["source"], dtype=torch.float64))
        want = greedy(cell, (h[0], c[0]), head, None, 7, len(h[0]),
                      output_state=lambda s: s[0])
    got = rc.generate(spec, params, [], 7, greedy=True, context=context, backend=backend)
    assert got == want  # (7 tokens from a decoder trained on 5: its `steps` is per call)


def test_the_plan_of_a_feedback_decoder():
    plan = plan_generation(rc.load_spec(ROOT / "specs" / "translate_generate.yaml"))
    assert (plan.feedback, plan.fed, plan.context_inputs) == ("words", "words.fed0", ["source"])
    assert [layer.name for layer in plan.step.layers] == ["decoder", "words"]
    assert plan.step.layers[0].output.steps == 1  # one step a call
    caption = plan_generation(rc.load_spec(ROOT / "specs" / "caption_generate.yaml"))
    assert caption.context is None and caption.per_call == ("image",)


def test_state_io_takes_what_is_fed_back_first():
    spec, params, context = case("caption_generate")
    plain = rc.run(spec, params, context)
    streamed = rc.run(spec, params, context, state_io=True)  # words.fed0: zeros, as trained
    np.testing.assert_array_equal(streamed["words"], plain["words"])
    start = np.eye(10)[np.arange(len(context["image"])) % 10]
    other = rc.run(spec, params, {**context, "words.fed0": start}, state_io=True)
    assert not np.allclose(other["words"][:, 0], plain["words"][:, 0])
