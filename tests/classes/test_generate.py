"""Generation from a language model (``rnnc generate``, ``rc.generate``): greedy decoding
against PyTorch's on the same weights, and against re-running the whole model on every
prefix; sampling's distribution, seeds, top-k and stop tokens; the vocabulary that travels
with the parameters; the specs that cannot generate."""

import numpy as np
import pytest

import rnncompiler as rc
from rnncompiler.errors import RnncError
from rnncompiler.generation import Generator, Sampling, generate_ids

VOCAB = 9
LM = f"""
rnnc: 1
name: lm
dtype: float64
inputs:
  x: {{classes: {VOCAB}}}
targets:
  y: {{classes: {VOCAB}}}
layers:
  - {{name: E, type: embedding, input: x, units: 4}}
  - {{name: R, type: rnn, cell: lstm, units: 8, input: E, return: sequence}}
  - {{name: logits, type: dense, units: {VOCAB}, input: R}}
loss: {{type: cross_entropy, output: logits, target: y}}
unroll: {{steps: 6}}
"""
ONE_HOT = f"""
rnnc: 1
name: lm_one_hot
dtype: float64
inputs:
  x: {{features: {VOCAB}}}
layers:
  - {{name: R, type: rnn, cell: gru, units: 8, input: x, return: sequence}}
  - {{name: probs, type: dense, units: {VOCAB}, input: R, activation: softmax}}
"""


def lm(text=LM, seed=0):
    spec = rc.load_spec_text(text)
    params = rc.init_params(spec, seed=seed)
    rng = np.random.default_rng(seed)
    return spec, {k: v + rng.normal(0, 0.5, v.shape) for k, v in params.items()}


@pytest.mark.parametrize("backend", ["numpy", "onnx"])
def test_greedy_matches_rerunning_every_prefix(backend):
    """Step by step with the states carried = the whole model on each prefix, argmax."""
    for text, output in ((LM, "logits"), (ONE_HOT, "probs")):
        spec, params = lm(text)
        made = rc.generate(spec, params, [3, 1], length=8, greedy=True, backend=backend)
        sequence = [3, 1]
        for token in made:
            ids = np.array([sequence])
            x = ids if "classes" in text else np.eye(VOCAB)[ids]
            scores = rc.run(spec, params, {"x": x}, steps=len(sequence))[output]
            assert scores[0, -1].argmax() == token
            sequence.append(token)


def test_greedy_matches_torch():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    spec, params = lm()
    embedding = nn.Embedding.from_pretrained(torch.tensor(params["E.W"]))
    lstm = nn.LSTM(4, 8, batch_first=True).double()
    head = nn.Linear(8, VOCAB).double()
    gates = "ifco"
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.tensor(np.concatenate([params[f"R.W_x{g}"]
                                                             for g in gates])))
        lstm.weight_hh_l0.copy_(torch.tensor(np.concatenate([params[f"R.W_h{g}"]
                                                             for g in gates])))
        lstm.bias_ih_l0.copy_(torch.tensor(np.concatenate([params[f"R.b_{g}"]
                                                           for g in gates])))
        lstm.bias_hh_l0.zero_()
        head.weight.copy_(torch.tensor(params["logits.W"]))
        head.bias.copy_(torch.tensor(params["logits.b"]))
        out, state = lstm(embedding(torch.tensor([[2, 7, 5]])))
        want = []
        for _ in range(12):
            token = int(head(out[:, -1]).argmax(-1))
            want.append(token)
            out, state = lstm(embedding(torch.tensor([[token]])), state)
    for backend in ("numpy", "onnx"):
        assert rc.generate(spec, params, [2, 7, 5], 12, greedy=True, backend=backend) == want


def test_sampling_follows_the_softmax_of_the_scores():
    scores = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    rng = np.random.default_rng(0)
    draws = np.concatenate([Sampling().draw(np.repeat(scores, 1000, 0), rng)
                            for _ in range(20)])
    frequencies = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(frequencies, [0.5, 0.3, 0.15, 0.05], atol=0.01)
    # temperature 0.5 squares the probabilities (renormalised); top-k 2 keeps two
    cold = Sampling(temperature=0.5).draw(np.repeat(scores, 20000, 0), rng)
    squared = np.array([0.25, 0.09, 0.0225, 0.0025])
    np.testing.assert_allclose(np.bincount(cold, minlength=4) / 20000,
                               squared / squared.sum(), atol=0.01)
    top = Sampling(top_k=2).draw(np.repeat(scores, 20000, 0), rng)
    assert set(np.unique(top)) == {0, 1}
    np.testing.assert_allclose((top == 0).mean(), 0.5 / 0.8, atol=0.01)


def test_seeds_samples_top_k_and_stop():
    spec, params = lm()
    model = Generator(spec, params)
    first = generate_ids(model, [1], 20, samples=3, seed=5)
    assert first == generate_ids(model, [1], 20, samples=3, seed=5)
    assert first != generate_ids(model, [1], 20, samples=3, seed=6)
    assert len({tuple(row) for row in first}) > 1  # each sample its own draws
    greedy = generate_ids(model, [1], 10, sampling=Sampling(greedy=True))
    assert generate_ids(model, [1], 10, sampling=Sampling(top_k=1), seed=9) == greedy
    stop = greedy[0][3]
    ended = generate_ids(model, [1], 10, sampling=Sampling(greedy=True), stop=stop)[0]
    assert ended == greedy[0][:greedy[0].index(stop) + 1]


def test_text_in_text_out_with_the_vocabulary_in_the_parameters():
    spec, params = lm()
    tokens = list("abcdefgh ")
    params["vocabulary.x"] = np.array(tokens)
    text = rc.generate(spec, params, "abc", 15, seed=1)
    assert isinstance(text, str) and len(text) == 15 and set(text) <= set(tokens)
    ids = rc.generate(spec, params, [0, 1, 2], 15, seed=1)
    assert text == "".join(tokens[i] for i in ids)
    with pytest.raises(RnncError, match="not in the vocabulary: 'z'"):
        rc.generate(spec, params, "abz", 5)
    del params["vocabulary.x"]
    with pytest.raises(RnncError, match="needs a vocabulary"):
        rc.generate(spec, params, "abc", 5)


BIDIRECTIONAL = LM.replace("return: sequence}", "return: sequence, direction: bidirectional}")
FEW_SCORES = LM.replace(f"units: {VOCAB}, input: R}}", "units: 3, input: R}").replace(
    "loss: {type: cross_entropy, output: logits, target: y}\n", "")


@pytest.mark.parametrize(("text", "message"), [
    (BIDIRECTIONAL, "runs bidirectional: generation runs forward only"),
    (FEW_SCORES, "one score per token"),
])
def test_specs_that_cannot_generate_say_why(text, message):
    spec = rc.load_spec_text(text)
    with pytest.raises(RnncError, match=message):
        rc.generate(spec, rc.init_params(spec), [1], 3)


def test_bad_vocabularies_are_errors():
    spec, params = lm()
    with pytest.raises(RnncError, match="expected 9 strings"):
        rc.check_params(spec, {**params, "vocabulary.x": np.array(list("abc"))})
    with pytest.raises(RnncError, match="not an input or target of class ids"):
        rc.check_params(spec, {**params, "vocabulary.E": np.array(list("abcdefghi"))})
    with pytest.raises(RnncError, match="holds a token twice"):
        rc.check_params(spec, {**params, "vocabulary.x": np.array(list("abcdefgha"))})
