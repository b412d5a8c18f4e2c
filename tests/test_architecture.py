"""The layout of the package is the pipeline: each layer imports only those below it
(DESIGN: errors -> frontend -> ir -> build -> autodiff -> passes -> lowering -> backend -> api ->
clients -> cli), no module imports itself back through others, and no module outgrows a
reader (400 lines)."""

from __future__ import annotations

import ast

import networkx as nx
import pytest
from conftest import ROOT

PACKAGE = ROOT / "rnncompiler"
LAYERS = [  # lowest first; a module may import its own layer and those before it
    ("errors", "writing"),
    ("frontend",),
    ("ir",),
    ("build",),
    ("autodiff",),
    ("passes",),
    ("lowering",),
    ("backend",),
    ("api", "arrays", "gradcheck", "vocabulary", "generation", "generation_plan"),
    ("interop", "training", "inspection"),
    ("cli",),
]
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _name(path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path) -> set[str]:
    """The rnncompiler modules ``path`` imports, anywhere in it (lazy imports too; not
    those under ``if TYPE_CHECKING:``, which never run)."""
    package = _name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            submodules = [f"{module}.{a.name}" for a in node.names
                          if _name_of_file(f"{module}.{a.name}")]
            found.update(submodules or [module])
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m.split(".")[0] == "rnncompiler"}


def _runtime_nodes(tree):
    """Every node of ``tree`` but those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _name_of_file(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return RANK.get(parts[1]) if len(parts) > 1 else None


GRAPH = nx.DiGraph((_name(path), target) for path in MODULES for target in _imports(path))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _name(p))
def test_imports_go_down_the_pipeline(path):
    here = _layer(_name(path))
    if here is None:
        return  # the package's own __init__: lazy exports of the API
    upward = sorted(m for m in _imports(path)
                    if _layer(m) is not None and _layer(m) > here)
    assert not upward, f"{_name(path)} (layer {here}) imports from above it: {upward}"


CLI_READS = {  # the public API, and its clients
    "api", "arrays", "backend", "errors", "gradcheck", "writing", "vocabulary", "generation",
    "generation_plan", "interop", "training", "inspection", "cli"}


@pytest.mark.parametrize("path", sorted((PACKAGE / "cli").glob("*.py")), ids=lambda p: p.stem)
def test_the_cli_reads_the_public_api(path):
    """The command line calls what a user of the package calls (``rnncompiler``'s exports,
    the API modules, the clients); the compiler's inner layers are not its business."""
    inner = sorted(m for m in _imports(path)
                   if m != "rnncompiler" and m.split(".")[1] not in CLI_READS)
    assert not inner, f"{_name(path)} reaches inside: {inner}"


def test_every_module_has_a_layer():
    missing = sorted({_name(p).split(".")[1] for p in MODULES if _name(p) != "rnncompiler"}
                     - set(RANK))
    assert not missing, f"give these a place in LAYERS: {missing}"


def test_no_import_circles():
    modules = GRAPH.subgraph(n for n in GRAPH if _name_of_file(n))
    cycles = [c for c in nx.simple_cycles(modules) if len(c) > 1]
    assert not cycles, cycles[:5]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _name(p))
def test_modules_stay_readable(path):
    lines = len(path.read_text().splitlines())
    assert lines <= 400, f"{path.relative_to(ROOT)} has {lines} lines; split it by concern"


def test_ruff_passes():
    """The project's lint (pyproject.toml's [tool.ruff]) is part of the suite, so CI runs it."""
    import shutil
    import subprocess

    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]' installs it)")
    result = subprocess.run([ruff, "check", "--no-cache", "."], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
