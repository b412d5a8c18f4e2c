"""``rnnc train`` on class ids, then ``rnnc generate``, ``rnnc evaluate`` and ``rnnc
predict`` as a user runs them: the vocabulary saved with the parameters, text in and out,
one-line errors."""

import json

import numpy as np
import pytest
from conftest import ROOT

from rnncompiler.cli import main

CHAR_LM = str(ROOT / "specs" / "char_lm.yaml")
SONNETS = str(ROOT / "specs" / "data" / "sonnets.txt")
REVERSE = str(ROOT / "specs" / "reverse.yaml")


@pytest.fixture(scope="module")
def char_params(tmp_path_factory):
    out = tmp_path_factory.mktemp("lm") / "lm.npz"
    assert main(["train", CHAR_LM, "--task", f"chars:{SONNETS}", "--epochs", "1",
                 "--examples", "64", "--steps", "16", "-o", str(out), "--quiet"]) == 0
    return out


def test_train_saves_the_vocabulary(char_params):
    saved = np.load(char_params)
    text = open(SONNETS, encoding="utf-8").read()
    assert saved["vocabulary.text"].tolist() == sorted(set(text))
    assert saved["vocabulary.next"].tolist() == sorted(set(text))


def test_generate_text(char_params, capsys):
    assert main(["generate", CHAR_LM, "--params", str(char_params), "--prompt", "Shall I ",
                 "--length", "40", "--seed", "1", "--samples", "2"]) == 0
    out = capsys.readouterr().out
    first, second = out.split("\n\n")
    assert first.startswith("Shall I ") and second.startswith("Shall I ")
    assert len(first) == len("Shall I ") + 40 and first != second.strip()
    assert set(first) <= set(open(SONNETS, encoding="utf-8").read())
    for backend in ("numpy", "onnx"):  # the same draws on both backends
        assert main(["generate", CHAR_LM, "--params", str(char_params), "--prompt", "S",
                     "--length", "20", "--seed", "2", "--backend", backend]) == 0
    numpy_out, onnx_out = capsys.readouterr().out.split("\n")[:2]
    assert numpy_out == onnx_out and len(numpy_out) == 21


def test_generate_errors_are_one_line(char_params, tmp_path, capsys):
    assert main(["generate", CHAR_LM, "--params", str(char_params), "--prompt", "Zé"]) == 1
    assert capsys.readouterr().err.strip() == \
        "error: the prompt holds 2 token(s) not in the vocabulary: 'Z', 'é'"
    bare = tmp_path / "bare.npz"
    np.savez(bare, **{k: v for k, v in np.load(char_params).items() if "vocab" not in k})
    assert main(["generate", CHAR_LM, "--params", str(bare), "--prompt", "S"]) == 1
    assert "carries no vocabulary (vocabulary.text)" in capsys.readouterr().err
    assert main(["generate", CHAR_LM, "--params", str(bare), "--prompt-ids", "3 1 4",
                 "--length", "5"]) == 0
    assert len(capsys.readouterr().out.split()) == 8
    tagger = str(ROOT / "specs" / "tagger_bilstm.yaml")
    params = tmp_path / "t.npz"
    assert main(["init", tagger, "-o", str(params)]) == 0
    capsys.readouterr()
    assert main(["generate", tagger, "--params", str(params), "--prompt-ids", "1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot generate" in err


def test_evaluate_and_predict(char_params, tmp_path, capsys):
    figures = tmp_path / "f.json"
    assert main(["evaluate", CHAR_LM, "--params", str(char_params), "--task",
                 f"chars:{SONNETS}", "--examples", "50", "--steps", "16",
                 "--json", str(figures)]) == 0
    out = capsys.readouterr().out
    written = json.loads(figures.read_text())
    assert out.startswith(f"loss {written['loss']:.4g}, accuracy")
    assert written["examples"] == 50 and 0 <= written["accuracy"] <= 1
    text = open(SONNETS, encoding="utf-8").read()
    vocabulary = sorted(set(text))
    ids = np.array([[vocabulary.index(c) for c in "Shall I compare thee"]])
    inputs, predicted = tmp_path / "x.npz", tmp_path / "p.npz"
    np.savez(inputs, text=ids)
    assert main(["predict", CHAR_LM, "--params", str(char_params), "--inputs", str(inputs),
                 "--steps", "20", "-o", str(predicted)]) == 0
    lines = capsys.readouterr().out.splitlines()
    written = np.load(predicted)
    assert written["logits.ids"].shape == (1, 20)
    assert lines == ["".join(vocabulary[i] for i in written["logits.ids"][0])]
    np.testing.assert_array_equal(written["logits.ids"], written["logits"].argmax(-1))


def test_reverse_from_the_command_line(tmp_path, capsys):
    params = tmp_path / "rev.npz"
    assert main(["train", REVERSE, "--task", "reverse", "--epochs", "1", "--examples", "64",
                 "-o", str(params), "--quiet"]) == 0
    capsys.readouterr()
    context = ROOT / "specs" / "data" / "reverse.npz"
    assert main(["generate", REVERSE, "--params", str(params), "--context", str(context),
                 "--prompt", "^", "--length", "8", "--greedy"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(np.load(context)["digits"])
    assert all(len(line) == 9 and line[0] == "^" for line in lines)
    assert main(["generate", REVERSE, "--params", str(params), "--prompt", "^"]) == 1
    assert "give them with --context" in capsys.readouterr().err


def test_a_short_run_of_the_character_model_learns():
    """A CI-sized run: the held-out last tenth of the sonnets is predicted well above the
    most frequent character's share (a space: about a sixth), and its loss falls far
    below the uniform guess (log 56)."""
    import collections
    import math

    import rnncompiler as rc

    trained = rc.train(CHAR_LM, task=f"chars:{SONNETS}", epochs=3, examples=600, steps=32,
                       val_split=0.0)
    figures = rc.evaluate(CHAR_LM, trained.params, task=f"chars:{SONNETS}", examples=200,
                          steps=32)
    text = open(SONNETS, encoding="utf-8").read()
    frequent = collections.Counter(text).most_common(1)[0][1] / len(text)
    assert figures["accuracy"] > frequent + 0.1, (figures, frequent)
    assert figures["loss"] < math.log(56) - 1.0, figures
