"""Every command and option of ``rnnc``, in one place; importing this is cheap (no numpy,
no onnx), so ``rnnc --help`` and ``rnnc --version`` answer at once.

Numbers are range-checked as they are parsed, enumerated values are ``choices`` (argparse
says what it expected), and every option's help shows its default.
"""

from __future__ import annotations

import argparse
from importlib.metadata import entry_points

from .. import __version__

REFERENCE = "docs/spec.md"
EPILOG = (f"The spec language: {REFERENCE}. Exit status: 0 done, 1 bad input, 2 bad usage, "
          "3 internal error (a bug in rnnc), 130 interrupted.")
FORMATS = ("text", "json", "graphml", "dot", "svg", "png")
LAYOUTS = ("torch", "keras", "onnx")  # interop.FORMATS, without importing numpy
TASKS = "adding, memory, sine, parity, reverse, chars:FILE"


class Help(argparse.HelpFormatter):
    """argparse's help, with every option's default unless its help already says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        quiet = (None, False, argparse.SUPPRESS)
        if action.default not in quiet and "default" not in text and action.option_strings:
            text += " (default: %(default)s)"
        return text


def _number(kind, low=None, high=None, low_open=False, high_open=False, what=""):
    """An argparse type: ``kind`` within [low, high] (open where asked)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got '{text}'") from None
        below = low is not None and (value < low or (low_open and value == low))
        above = high is not None and (value > high or (high_open and value == high))
        if value != value or below or above:  # value != value: NaN
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return value
    return parse


count = _number(int, 1, what="an integer >= 1")
seed = _number(int, 0, 2**63 - 1, what="an integer >= 0")
positive = _number(float, 0, float("inf"), low_open=True, high_open=True,
                   what="a number > 0")
fraction = _number(float, 0, 1, high_open=True, what="a number from 0 to below 1")


def backend_names() -> list[str]:
    return sorted(ep.name for ep in entry_points(group="rnncompiler.backends"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnc", epilog=EPILOG, formatter_class=Help,
        description="Compile recurrent networks written as YAML specs.")
    parser.add_argument("--version", action="version", version=f"rnnc {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--allow-large", action="store_true",
                        help="lift the limits on sizes, steps and parameter count")

    def command(name: str, summary: str, description: str, parents=(common,)):
        return commands.add_parser(name, parents=list(parents), help=summary, epilog=EPILOG,
                                   description=description, formatter_class=Help)

    command("schema", "print the JSON Schema of the spec format",
            "Print the JSON Schema of the spec format, for editors "
            "(yaml-language-server: $schema=...).", parents=())
    check = command("check", "validate a spec and print a summary",
                    "Validate SPEC (every error at once) and print what it builds.")
    check.add_argument("spec", metavar="SPEC")
    check.add_argument("--steps", type=count, metavar="T", help="unroll over T steps")

    init = command("init", "write initial parameters",
                   "Write fresh parameters for SPEC to an .npz file, keyed '<layer>.<param>'.")
    init.add_argument("spec", metavar="SPEC")
    init.add_argument("-o", "--output", required=True, metavar="PARAMS.npz")
    init.add_argument("--seed", type=seed, default=0, help="random seed")

    run = command("run", "run the network on inputs",
                  "Run SPEC on the arrays in INPUTS and write every output under its layer "
                  "name, and every rnn layer's final states as '<layer>.<state>'.")
    _spec_params_inputs(run, "X.npz", "OUT.npz")
    _backend_and_steps(run)

    grad = command("grad", "write the loss and its gradients",
                   "Compute the loss of SPEC on the inputs and targets in XY and its gradient "
                   "for every parameter (BPTT as unroll.bptt says); write `loss` and "
                   "`grad.<layer>.<param>`.")
    _spec_params_inputs(grad, "XY.npz", "G.npz")
    _backend_and_steps(grad)

    check_grads = command(
        "gradcheck", "check gradients against finite differences",
        "Compare the derived gradients with float64 central differences on random "
        "parameters and data; print the worst relative error per parameter; exit 1 above "
        "the tolerance. Checks full BPTT.")
    check_grads.add_argument("spec", metavar="SPEC")
    check_grads.add_argument("--steps", type=count, metavar="T", help="unroll over T steps")
    check_grads.add_argument("--tolerance", type=positive, default=1e-5, metavar="TOL",
                             help="the worst relative error allowed")
    check_grads.add_argument("--seed", type=seed, default=0, help="random seed")

    inspect = command(
        "inspect", "see the unrolled graph",
        "Show the unrolled graph: a summary (text), the graph as data (json: networkx "
        "node-link; graphml) or a picture laid out by time (dot, svg, png; every parameter "
        "drawn once). --grad-flow plots ‖dL/dh_t‖ per step.")
    inspect.add_argument("spec", metavar="SPEC")
    inspect.add_argument("--steps", type=count, metavar="T", help="unroll over T steps")
    inspect.add_argument("--format", choices=FORMATS, default=None,
                         help="text, json, graphml, dot, svg or png (default: from -o's "
                              "suffix, else text)")
    inspect.add_argument("--grad", action="store_true", help="the training graph (BPTT)")
    inspect.add_argument("-O", dest="level", type=int, choices=(0, 1, 2), default=None,
                         metavar="LEVEL", help="show the graph after the passes of LEVEL and "
                                               "what each changed (default: as written)")
    inspect.add_argument("--grad-flow", action="store_true",
                         help="plot ‖dL/dh_t‖ for every step and layer (needs --params and "
                              "--inputs; writes -o as PNG/SVG and a .csv beside it)")
    inspect.add_argument("--params", metavar="P.npz", help="--grad-flow: the parameters")
    inspect.add_argument("--inputs", metavar="XY.npz", help="--grad-flow: inputs and targets")
    inspect.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")

    compile_ = command("compile", "emit code for a backend",
                       "Emit SPEC for a backend: with numpy, one standalone Python module "
                       "that needs only numpy; with onnx, an ONNX model.")
    compile_.add_argument("spec", metavar="SPEC")
    compile_.add_argument("-o", "--output", required=True, metavar="PATH",
                          help="the module (.py: --backend numpy) or model (.onnx: --backend "
                               "onnx)")
    compile_.add_argument("--params", metavar="P.npz",
                          help="check these parameters against the spec (ONNX: embed them)")
    compile_.add_argument("--train", action="store_true",
                          help="also emit loss_and_grads and train_step (ONNX: the "
                               "training graph)")
    _backend_and_steps(compile_, default=None)
    _train_parser(command)
    _model_use_parsers(command)
    _interop_parsers(command)
    return parser


def _spec_params_inputs(parser, inputs: str, output: str) -> None:
    parser.add_argument("spec", metavar="SPEC")
    parser.add_argument("--params", required=True, metavar="P.npz", help="the parameters")
    parser.add_argument("--inputs", required=True, metavar=inputs, help="the arrays to read")
    parser.add_argument("-o", "--output", required=True, metavar=output, help="write here")


def _backend_and_steps(parser, default: str | None = "numpy") -> None:
    names = ", ".join(backend_names()) or "none installed"
    parser.add_argument("--backend", default=default, metavar="B",
                        help=f"backend ({names})" + ("" if default else
                                                     "; default: from -o's suffix"))
    parser.add_argument("--steps", type=count, metavar="T",
                        help="unroll over T steps (default: unroll.steps, else the inputs')")
    parser.add_argument("--state-io", action="store_true",
                        help="states that start from zeros start from inputs "
                             "<layer>.<state>0 instead (streaming)")
    parser.add_argument("-O", dest="level", type=int, choices=(0, 1, 2), default=2,
                        metavar="LEVEL", help="optimisation: 0 none, 1 dead code, 2 also fused, "
                                              "hoisted and batched products")
    _backends_own_options(parser)


def _backends_own_options(parser) -> None:
    """Each installed backend's own options, in a group of its name; ``args.own_options``
    says whose each is: {backend: {dest: flag}}."""
    own = {}
    for entry in sorted(entry_points(group="rnncompiler.backend_options"), key=lambda e: e.name):
        group = parser.add_argument_group(f"--backend {entry.name}")
        before = len(parser._actions)
        entry.load()(group)
        own[entry.name] = {action.dest: action.option_strings[0]
                           for action in parser._actions[before:]}
    parser.set_defaults(own_options=own)


def _train_parser(command) -> None:
    parser = command("train", "train the network (minibatch SGD or Adam)",
                     "Train SPEC on a data file or a built-in task; write the trained "
                     "parameters (beside SPEC unless -o says where), and a CSV log and JSON "
                     "metrics if asked. Ctrl-C stops after the current step and saves.")
    parser.add_argument("spec", metavar="SPEC")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", metavar="D.npz", help="inputs and targets, [examples, ...]")
    source.add_argument("--task", metavar="NAME", help=f"a built-in task: {TASKS}")
    parser.add_argument("-o", "--output", metavar="PARAMS.npz",
                        help="the trained parameters (default: SPEC's name with "
                             ".params.npz, beside it)")
    parser.add_argument("--epochs", type=count, default=10, help="epochs in all (a resumed "
                                                                 "run counts those done)")
    parser.add_argument("--batch-size", type=count, default=32, help="examples per step")
    parser.add_argument("--lr", type=positive, default=0.01, help="learning rate")
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="adam",
                        help="sgd or adam")
    parser.add_argument("--clip-norm", type=positive, metavar="N",
                        help="scale the gradients down to a global norm of at most N")
    parser.add_argument("--seed", type=seed, default=0,
                        help="initial parameters, task data, split and shuffles")
    parser.add_argument("--val-split", type=fraction, default=0.1, metavar="F",
                        help="share of the examples held out for validation")
    parser.add_argument("--examples", type=count, default=2000, metavar="N",
                        help="--task: training examples to make (as many again for the test)")
    parser.add_argument("--steps", type=count, metavar="T",
                        help="--task: sequence length (default: unroll.steps)")
    parser.add_argument("--params", metavar="P.npz", help="start from these parameters")
    parser.add_argument("--checkpoint", metavar="DIR",
                        help="after every epoch (and on Ctrl-C): DIR/params.npz, "
                             "optimizer.npz, log.csv, state.json")
    parser.add_argument("--resume", action="store_true",
                        help="continue from --checkpoint DIR where it stopped")
    parser.add_argument("--metrics", metavar="FILE.json",
                        help="train_loss and val_loss per epoch, and the final test figures")
    parser.add_argument("--log", metavar="FILE.csv", help="one line per epoch")
    parser.add_argument("--backend", default="numpy", choices=backend_names(),
                        help="computes the loss and gradients (onnx: the ONNX training graph "
                             "on onnxruntime)")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _model_use_parsers(command) -> None:
    """generate, evaluate and predict: what a trained model is for."""
    names = backend_names()
    generate = command(
        "generate", "sample text (or ids) from a trained language model",
        "Continue PROMPT one token at a time, each sampled token fed back as the next "
        "input; the model's states are carried from step to step, so no prefix is computed "
        "twice. The vocabulary comes with the parameters (vocabulary.<input>, which `rnnc "
        "train --task chars:FILE` saves); without one, give --prompt-ids. A feedback "
        "decoder needs no prompt: its first step sees zeros, as in training.")
    generate.add_argument("spec", metavar="SPEC")
    generate.add_argument("--params", required=True, metavar="P.npz", help="the parameters")
    prompt = generate.add_mutually_exclusive_group()
    prompt.add_argument("--prompt", metavar="TEXT", help="the text to continue")
    prompt.add_argument("--prompt-ids", metavar="IDS", help="the ids to continue: '3 1 4'")
    generate.add_argument("--length", type=count, default=200, metavar="N",
                          help="tokens to generate")
    generate.add_argument("--temperature", type=positive, default=1.0,
                          help="scores divided by this before sampling (lower: surer)")
    generate.add_argument("--top-k", type=count, metavar="K",
                          help="sample among the K most likely tokens only")
    generate.add_argument("--greedy", action="store_true",
                          help="always the most likely token (no sampling)")
    generate.add_argument("--samples", type=count, default=1, metavar="N",
                          help="continuations to draw (in one batch)")
    generate.add_argument("--stop", metavar="TOKEN",
                          help="end a continuation after this token (an id with --prompt-ids)")
    generate.add_argument("--context", metavar="C.npz",
                          help="the inputs computed once before the first token (an "
                               "encoder's source): one continuation per example")
    generate.add_argument("--seed", type=seed, default=0, help="random seed")
    generate.add_argument("--backend", default="numpy", choices=names, help="runs the model")

    evaluate = command("evaluate", "the loss and accuracy (or mse) on a data file",
                       "Compute the loss of SPEC with the parameters P, and its accuracy "
                       "(cross_entropy: argmax against the target) or mse, over the steps "
                       "that count, on a data file or a task's test examples.")
    evaluate.add_argument("spec", metavar="SPEC")
    evaluate.add_argument("--params", required=True, metavar="P.npz", help="the parameters")
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", metavar="D.npz", help="inputs and targets")
    source.add_argument("--task", metavar="NAME", help=f"a built-in task's test examples: "
                                                       f"{TASKS}")
    evaluate.add_argument("--examples", type=count, default=2000, metavar="N",
                          help="--task: examples to make")
    evaluate.add_argument("--steps", type=count, metavar="T",
                          help="sequence length (default: unroll.steps, else the data's)")
    evaluate.add_argument("--seed", type=seed, default=0, help="--task: as given to train")
    evaluate.add_argument("--batch-size", type=count, default=256, help="examples per call")
    evaluate.add_argument("--json", metavar="FILE.json", help="also write the figures here")
    evaluate.add_argument("--backend", default="numpy", choices=names, help="runs the model")

    predict = command("predict", "outputs, with class ids and text where a vocabulary "
                                 "exists",
                      "Run SPEC on the inputs and write every output, as `rnnc run` does, and "
                      "for the loss's output (one score per class) also `<output>.ids`, the "
                      "most likely class at every step; with the target's vocabulary "
                      "(vocabulary.<target> in P), print each example's classes as text.")
    _spec_params_inputs(predict, "X.npz", "OUT.npz")
    predict.add_argument("--steps", type=count, metavar="T",
                         help="unroll over T steps (default: unroll.steps, else the inputs')")
    predict.add_argument("--backend", default="numpy", choices=names, help="runs the model")


def _interop_parsers(command) -> None:
    export = command("export-params", "write parameters in another framework's layout",
                     "Write P.npz in PyTorch's (state_dict names, <layer>.weight_ih_l0...), "
                     "Keras's (<layer>/kernel...) or ONNX's (<layer>.W, .R, .B) layout.")
    export.add_argument("params", metavar="P.npz")
    export.add_argument("--to", required=True, choices=LAYOUTS, help="the layout to write")
    export.add_argument("-o", "--output", required=True, metavar="OUT.npz", help="write here")
    imported = command("import-params", "read parameters from another framework's layout",
                       "Read SOURCE.npz, written in PyTorch's, Keras's or ONNX's layout, as "
                       "the parameters of SPEC.")
    imported.add_argument("source", metavar="SOURCE.npz")
    imported.add_argument("--from", dest="frm", choices=LAYOUTS,
                          help="the layout of SOURCE (default: told by its array names)")
    imported.add_argument("--spec", required=True, metavar="SPEC", help="the spec they fit")
    imported.add_argument("-o", "--output", required=True, metavar="P.npz", help="write here")

    model = command(
        "import", "a spec and parameters from a PyTorch, ONNX or Keras model",
        "Write a spec and its parameters for a PyTorch state_dict of nn.RNN / LSTM / GRU "
        "modules and nn.Linear heads (after an nn.Embedding), applied in order, for an ONNX "
        "model of RNN / LSTM / GRU operators and dense heads (as torch.onnx.export writes "
        "it), or for a Keras 3 .keras file (Sequential or Functional: SimpleRNN / LSTM / "
        "GRU, Bidirectional, Dense, TimeDistributed(Dense), Embedding, Masking; read with "
        "h5py, no Keras).")
    model.add_argument("source", metavar="STATE.pt|STATE.npz|MODEL.onnx|MODEL.keras")
    model.add_argument("--from", dest="frm", choices=("torch", "onnx", "keras"),
                       help="what SOURCE is (default: from its suffix: .pt, .pth, .npz torch; "
                            ".onnx; .keras)")
    model.add_argument("-o", "--output", required=True, metavar="SPEC.yaml",
                       help="the spec to write")
    model.add_argument("--params", required=True, metavar="P.npz",
                       help="the parameters to write")
    model.add_argument("--name", default="imported", help="the spec's name")
    model.add_argument("--return", dest="returns", choices=("last", "sequence"),
                       default=None, help="--from torch: what the last recurrent layer gives: "
                                          "its final states (h_n, default) or every step")
    model.add_argument("--nonlinearity", choices=("tanh", "relu"), default=None,
                       help="--from torch: that of the nn.RNN modules, which a state_dict "
                            "does not record (default tanh; relu: a custom cell simple_relu)")
    model.add_argument("--padding-id", dest="padding_id", type=int, default=None, metavar="N",
                       help="--from torch: the padding_idx of the nn.Embedding the state_dict "
                            "starts with, which a state_dict does not record (the embedding "
                            "layer's padding_id; default none)")
