"""One place per op: every op's shape rule, evaluation, VJP and traits sit in one block of
rnncompiler/ir/ops/; the tables that passes, backends and the spec language need agree with
it, and every installed backend lowers every op that can reach it."""

from __future__ import annotations

import ast

import pytest
from conftest import ROOT

from rnncompiler.backend import available_backends
from rnncompiler.frontend import equations, layers
from rnncompiler.ir import ops
from rnncompiler.passes import decompose_losses


def test_every_backend_lowers_every_op_that_can_reach_it():
    """Every op but the losses, which decompose_losses writes with other ops at every
    optimisation level, before a backend sees the graph."""
    reaching = set(ops.REGISTRY) - set(decompose_losses.FORMULAS)
    for name, entry in available_backends().items():
        missing = sorted(reaching - entry.load()().ops)
        assert not missing, f"backend {name} cannot lower {missing}"


def test_the_bundled_backends_lower_no_loss():
    """No backend writes loss math of its own: it lowers the ops the losses become."""
    for name in ("numpy", "onnx"):
        lowered = available_backends()[name].load()().ops & set(decompose_losses.FORMULAS)
        assert not lowered, f"backend {name} lowers {sorted(lowered)}"


def test_the_spec_language_names_exactly_the_ops_it_reaches():
    assert set(equations.FUNCTIONS) == ops.having("function")  # each named as its op
    assert set(layers.ACTIVATIONS) - {"linear"} == ops.having("activation")
    assert set(ops.BINARY) == {"+", "-", "*", "/", "@"}


@pytest.mark.parametrize("trait", sorted(ops.TRAITS))
def test_every_trait_is_held_by_some_op(trait):
    assert ops.having(trait)


def test_traits_are_checked_when_registered():
    with pytest.raises(ValueError, match="unknown traits"):
        ops.register("bogus", 1, ops.first_shape, None, traits=("elementwize",))
    assert "bogus" not in ops.REGISTRY


def test_elementwise_ops_have_the_rules_their_traits_promise():
    """An elementwise op takes any shape and gives it back; its VJP exists unless it is an
    op of gradients; zero_if_all ops of zeros give zeros."""
    import numpy as np

    for name in ops.having("elementwise"):
        op = ops.get(name)
        assert op.shape([(3, 4)] * (op.arity or 1), {}) == (3, 4)
        assert op.vjp is not None
    for name in ops.having("zero_if_all") & ops.having("elementwise"):
        op = ops.get(name)
        zeros = [np.zeros((2, 3))] * op.arity
        assert not np.any(op.evaluate(*zeros)), name


OUTSIDE = ("passes", "build", "autodiff", "ir/loops.py", "ir/graph.py", "ir/evaluate.py")


def test_no_trait_table_is_redeclared():
    """A tuple or set of two or more op names assigned to a module constant outside the
    registry is a table the registry should give (ops.having)."""
    names = set(ops.REGISTRY)
    found = []
    for place in OUTSIDE:
        for path in sorted((ROOT / "rnncompiler").glob(f"{place}/**/*.py" if "." not in place
                                                       else place)):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Assign) and isinstance(node.value, (ast.Tuple, ast.Set)):
                    words = {e.value for e in node.value.elts if isinstance(e, ast.Constant)}
                    if len(words & names) >= 2:
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found


# The code that handles graphs names an op as ``OP.<name>``: a word of the spec language
# that is also an op's name stays a word where the spec language is meant.
GRAPH_CODE = ("rnncompiler/ir", "rnncompiler/build", "rnncompiler/autodiff",
              "rnncompiler/passes", "rnncompiler/lowering", "rnncompiler/inspection", "backends")
SPEC_WORDS = {
    "rnncompiler/build/initializers.py": {"zeros"},  # an initializer's name in a spec
    "rnncompiler/build/losses.py": {"mse"},  # a loss type in a spec
    "backends/rnnc_onnx/builder.py": {"const"},  # the name hint of an ONNX Constant
}


def test_no_op_name_is_spelt_outside_the_registry():
    """Outside the registry (``ir/ops/``) and the backends' lowering tables (which say
    what each op becomes), no string in the code that handles graphs is an op's name."""
    names = set(ops.REGISTRY)
    found = []
    for place in GRAPH_CODE:
        for path in sorted((ROOT / place).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "/ops/" in relative or (path.name == "lowering.py" and relative.startswith("back")):
                continue
            allowed = SPEC_WORDS.get(relative, set())
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and node.value in names - allowed:
                    found.append(f"{relative}:{node.lineno}: {node.value!r}")
    assert not found, found


def test_op_names_are_the_registry():
    assert ops.OP.matvec == "matvec"
    assert set(vars(ops.OP)) == set(ops.REGISTRY)
    with pytest.raises(AttributeError):
        ops.OP.matmul  # noqa: B018
