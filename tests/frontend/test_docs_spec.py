"""docs/spec.md, the reference of the spec language, against the code: every whole spec
it shows is valid (or, marked `<!-- invalid: MESSAGE -->`, fails with that message), its
cell fragments are valid cells, and every key and value of the JSON Schema, every
built-in cell with its parameters and equations, every initialiser and every equation
function is documented."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import ROOT

from rnncompiler import RnncError, load_spec_text
from rnncompiler.frontend.cells import builtin_cells
from rnncompiler.frontend.equations import FUNCTIONS
from rnncompiler.frontend.schema import INITIALIZERS, schema

DOC = ROOT / "docs" / "spec.md"
TEXT = DOC.read_text(encoding="utf-8")

# a fenced yaml block, and the HTML comment right before it, if any
_BLOCK = re.compile(r"(?:<!--\s*(?P<note>.*?)\s*-->\s*\n)?```yaml\n(?P<body>.*?)\n```", re.S)
# a cells-only fragment is checked inside this spec (every custom cell is checked, used or not)
_CELL_HOST = """\
rnnc: 1
name: doc_cell
inputs:
  x: {features: 3}
layers:
  - {name: R, type: rnn, cell: simple, units: 4, input: x}
"""


def _blocks():
    for match in _BLOCK.finditer(TEXT):
        line = TEXT.count("\n", 0, match.start("body")) + 1
        yield line, match.group("note"), match.group("body")


def _whole_specs():
    return [(line, note, body) for line, note, body in _blocks()
            if re.search(r"^rnnc:", body, re.M)]


def _cell_fragments():
    fragments = []
    for line, note, body in _blocks():
        value = yaml.safe_load(body)
        if isinstance(value, dict) and set(value) == {"cells"}:
            fragments.append((line, note, body))
    return fragments


def _expected_failure(note):
    """None for a block that must be valid, else the text its error must contain."""
    if note is None or not note.startswith("invalid"):
        return None
    return note[len("invalid"):].lstrip(":").strip()


def test_the_doc_has_examples():
    assert len(_whole_specs()) >= 15
    assert sum(_expected_failure(note) is not None for _, note, _ in _whole_specs()) >= 4
    assert _cell_fragments()


def _cases(blocks) -> list:
    return [pytest.param(line, note, body, id=f"line{line}") for line, note, body in blocks]


@pytest.mark.parametrize(("line", "note", "body"), _cases(_whole_specs()))
def test_every_whole_spec_in_the_doc_checks(line, note, body):
    failure = _expected_failure(note)
    name = f"docs/spec.md:{line}"
    if failure is None:
        load_spec_text(body, filename=name)
        return
    with pytest.raises(RnncError) as caught:
        load_spec_text(body, filename=name)
    assert failure in str(caught.value), f"{name} fails otherwise: {caught.value}"


@pytest.mark.parametrize(("line", "note", "body"), _cases(_cell_fragments()))
def test_every_cell_fragment_in_the_doc_checks(line, note, body):
    spec = load_spec_text(_CELL_HOST + body, filename=f"docs/spec.md:{line}")
    assert set(yaml.safe_load(body)["cells"]) <= set(spec.cells)


def _schema_names(node, keys: set, values: set) -> None:
    """Every property name, and every enum and const string, anywhere in the schema."""
    if isinstance(node, dict):
        for key in node.get("properties", {}):
            keys.add(key)
        for value in node.get("enum", []):
            values.add(str(value))
        if "const" in node:
            values.add(str(node["const"]))
        for child in node.values():
            _schema_names(child, keys, values)
    elif isinstance(node, list):
        for child in node:
            _schema_names(child, keys, values)


def _undocumented(names) -> list:
    return sorted(name for name in names if f"`{name}`" not in TEXT)


def test_every_schema_key_and_value_is_documented():
    keys, values = set(), set()
    _schema_names(schema(), keys, values)
    assert {"rnnc", "features", "initial_state", "equations", "window", "chunk",
            "init"} <= keys  # the walk reaches the nested definitions
    assert _undocumented(keys) == []
    assert _undocumented(values) == []


def test_every_builtin_cell_is_documented_with_its_parameters_and_equations():
    cells = builtin_cells()
    assert _undocumented(cells) == []
    for name, cell in cells.items():
        section = TEXT.split(f"### `{name}`\n", 1)[1].split("\n### ", 1)[0]
        for param in cell.params.values():
            shape = "[" + ", ".join(map(str, param.shape)) + "]"
            row = next((row for row in section.splitlines()
                        if row.startswith("|") and f"`{param.name}`" in row), None)
            assert row is not None, f"{name}: parameter {param.name} is not in its table"
            assert f"`{shape}`" in row and f"`{param.init}`" in row, (name, row)
        for equation in cell.equations:
            assert re.search(rf"^ {{4}}{re.escape(equation.text)}\s*(#.*)?$", section, re.M), \
                f"{name}: equation `{equation.text}` is not in its section"
        for state in cell.states:
            assert f"`{state}`" in section


def test_every_function_and_initializer_is_documented():
    functions = re.search(r"\n### Functions\n(.*?)\n### ", TEXT, re.S).group(1)
    for function in FUNCTIONS:  # a row of the table of functions: `tanh(v)`
        assert re.search(rf"^\| `{function}\(", functions, re.M), function
    assert _undocumented(INITIALIZERS) == []


def test_the_doc_never_points_outside_the_project():
    for word in ("SPEC.md", "/work/", "contract"):
        assert word not in TEXT


def _anchors(path) -> set:
    """GitHub's anchors of a Markdown file's headings."""
    anchors = set()
    for heading in re.findall(r"^#+ (.*)$", path.read_text(encoding="utf-8"), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_every_link_of_the_doc_leads_somewhere():
    links = re.findall(r"\]\(([^)\s]+)\)", TEXT)
    assert links
    for link in links:
        target, _, anchor = link.partition("#")
        path = (DOC.parent / target).resolve() if target else DOC
        assert path.exists(), f"docs/spec.md links to {link}: no such file"
        if anchor:
            assert anchor in _anchors(path), f"docs/spec.md links to {link}: no such heading"
