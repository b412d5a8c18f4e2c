"""An encoder-decoder on class ids (specs/reverse.yaml, the task ``reverse``): greedy
decoding with the encoder run once and the decoder one token at a time equals PyTorch's
greedy decoding with the same weights; a short training run learns the task; the
generation plan splits the spec as it should."""

import numpy as np
import pytest
from conftest import ROOT

import rnncompiler as rc
from rnncompiler.errors import RnncError
from rnncompiler.generation import plan_generation
from rnncompiler.training.reverse import START, Reverse

SPEC = ROOT / "specs" / "reverse.yaml"


def test_the_plan_splits_encoder_and_decoder():
    plan = plan_generation(rc.load_spec(SPEC))
    assert (plan.fed, plan.output, plan.context_inputs) == ("previous", "scores", ["digits"])
    assert [layer.name for layer in plan.context.layers] == ["read", "encoder"]
    assert [layer.name for layer in plan.step.layers] == ["write", "decoder", "scores"]
    assert plan.starts == {"decoder.h0": "encoder.h", "decoder.c0": "encoder.c"}


@pytest.mark.parametrize("backend", ["numpy", "onnx"])
def test_greedy_decoding_matches_torch(backend):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    spec = rc.load_spec(SPEC)
    rng = np.random.default_rng(4)
    params = {k: v + rng.normal(0, 0.3, v.shape) for k, v in rc.init_params(spec).items()}
    gates = "ifco"

    def lstm(prefix):
        module = nn.LSTM(16, 64, batch_first=True).double()
        with torch.no_grad():
            for ours, theirs in (("W_x", module.weight_ih_l0), ("W_h", module.weight_hh_l0)):
                theirs.copy_(torch.tensor(np.concatenate([params[f"{prefix}.{ours}{g}"]
                                                          for g in gates])))
            module.bias_ih_l0.copy_(torch.tensor(np.concatenate([params[f"{prefix}.b_{g}"]
                                                                 for g in gates])))
            module.bias_hh_l0.zero_()
        return module

    read = nn.Embedding.from_pretrained(torch.tensor(params["read.W"]))
    write = nn.Embedding.from_pretrained(torch.tensor(params["write.W"]))
    encoder, decoder = lstm("encoder"), lstm("decoder")
    head = nn.Linear(64, 11).double()
    with torch.no_grad():
        head.weight.copy_(torch.tensor(params["scores.W"]))
        head.bias.copy_(torch.tensor(params["scores.b"]))
    digits = rng.integers(0, 10, (5, 8))
    with torch.no_grad():
        _, state = encoder(read(torch.tensor(digits)))
        token, want = torch.full((5, 1), START), []
        for _ in range(8):
            out, state = decoder(write(token), state)
            token = head(out[:, -1]).argmax(-1, keepdim=True)
            want.append(token)
    want = torch.cat(want, 1).numpy().tolist()
    got = rc.generate(spec, params, [START], 8, greedy=True, context={"digits": digits},
                      backend=backend)
    assert got == want


def test_a_short_run_learns_to_reverse():
    """Teacher forcing for a few epochs (T = 5, 32 units), then greedy decoding: most
    strings come out exactly reversed (chance: 1e-5)."""
    text = (SPEC.read_text().replace("units: 64", "units: 32")
            .replace("steps: 8", "steps: 5"))
    spec = rc.load_spec_text(text)
    trained = rc.train(spec, task="reverse", epochs=6, examples=2000, val_split=0.0)
    test = Reverse().arrays(spec, 300, 5, np.random.default_rng(99), part="test")
    made = np.array(rc.generate(spec, trained.params, [START], 5, greedy=True,
                                context={"digits": test["digits"]}))
    exact = (made == test["reversed"]).all(axis=1).mean()
    assert exact > 0.5, exact
    assert trained.vocabularies["digits"] == list("0123456789^")


def test_context_is_required_and_checked():
    spec = rc.load_spec(SPEC)
    params = rc.init_params(spec)
    with pytest.raises(RnncError, match="takes the context input"):
        rc.generate(spec, params, [START], 3)
    with pytest.raises(RnncError, match="holds the id 11, out of range"):
        rc.generate(spec, params, [START], 3, context={"digits": np.full((2, 8), 11)})
