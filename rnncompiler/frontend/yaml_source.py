"""YAML text -> plain Python values, with the file:line:col of every key and value kept.

Only PyYAML's safe composer is used: no tags, no object construction. Mappings must have
string keys, no key twice, and the document is bounded in size, depth and in how far
aliases expand (a "billion laughs" file fails fast instead of eating the memory).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from ..errors import Broken, Location, SpecError, SpecErrors

MAX_BYTES = 4 * 1024 * 1024
MAX_VALUES = 200_000  # values after aliases are expanded
MAX_DEPTH = 64
MAX_ERRORS = 20  # `rnnc check` reports this many errors of a spec at most

_PLAIN_TAGS = {f"tag:yaml.org,2002:{name}" for name in
               ("str", "int", "float", "bool", "null", "timestamp", "binary", "map", "seq")}

Path = tuple  # of str keys and int indices


def format_path(path: Path) -> str:
    """('layers', 1, 'units') -> 'layers[1].units'."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


@dataclass
class Source:
    """One YAML document: its values and where each came from."""

    file: str
    text: str
    value: object = None
    value_locs: dict = field(default_factory=dict)
    key_locs: dict = field(default_factory=dict)
    block_starts: dict = field(default_factory=dict)  # path -> first content line of a block
    styles: dict = field(default_factory=dict)  # path -> a scalar's style: | > ' "
    errors: list = field(default_factory=list)  # errors kept while checking goes on
    broken: set = field(default_factory=set)  # names whose entries failed: uses stay quiet
    # sections ("inputs", "layers", ...) unread, or with an entry whose name is wrong: a
    # name not found there may be that entry's, and its use says nothing more
    broken_sections: set = field(default_factory=set)
    failures: int = 0  # errors kept and parts found broken, so far
    limits: bool = True  # check sizes against spec_checks.LIMITS

    def loc(self, path: Path, *, key: bool = False) -> Location:
        """Where the value (or, with key=True, the key) at ``path`` is; else its nearest parent."""
        path = tuple(path)
        while True:
            table = self.key_locs if key else self.value_locs
            if path in table:
                return table[path]
            if key and path in self.value_locs:
                return self.value_locs[path]
            if not path:
                return Location(self.file, 1, 1)
            path = path[:-1]
            key = False

    def attempt(self, check, *args, default=None, **kwargs):
        """``check(*args)``; a SpecError is kept and ``default`` returned, so that checking
        goes on and every independent error is reported (up to MAX_ERRORS)."""
        try:
            return check(*args, **kwargs)
        except Broken:
            self.failures += 1
            return default
        except SpecErrors:
            raise  # the cap was reached further in
        except SpecError as error:
            self.keep(error)
            return default

    def attempt_part(self, check, *args, default=None):
        """``attempt``, and ``default`` too when ``check`` went on past a failure of its own
        (a layer with two bad keys, or a key that uses a broken name): a part with any
        failure has failed, and what depends on it says nothing more."""
        before = self.failures
        result = self.attempt(check, *args, default=default)
        return default if self.failures > before else result

    def quiet_about(self, name, section: str, known) -> bool:
        """Whether a use of ``name`` should say nothing more: the entry it names failed, or
        it is not in ``known`` while an entry of ``section`` has a name that was wrong."""
        return isinstance(name, str) and (
            name in self.broken or (name not in known and section in self.broken_sections))

    def keep(self, error: SpecError) -> None:
        """Report ``error`` with the others and go on; at MAX_ERRORS, stop."""
        self.errors.append(error)
        self.failures += 1
        if len(self.errors) >= MAX_ERRORS:
            raise SpecErrors(_in_file_order(self.errors), more=True) from None

    def raise_errors(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise SpecErrors(_in_file_order(self.errors))

    def error(self, path: Path, message: str, *, key: bool = False) -> SpecError:
        """A SpecError at ``path`` whose message starts with the key path."""
        return SpecError(f"{format_path(path)}: {message}", self.loc(path, key=key))


def _in_file_order(errors: list) -> list:
    def place(error):
        return (error.location.line, error.location.column) if error.location else (0, 0)
    return sorted(errors, key=place)


def load_source(text: str, file: str) -> Source:
    """Parse ``text`` (one YAML document) into a Source, or raise SpecError."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise SpecError(f"file is larger than {MAX_BYTES // (1024 * 1024)} MiB", Location(file))
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise SpecError(f"the document nests deeper than {MAX_DEPTH} levels",
                        Location(file, 1, 1)) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        character = chr(exc.character) if isinstance(exc.character, int) else exc.character
        raise SpecError(f"invalid character {character!r} in the spec",
                        Location(file, line, column)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        raise SpecError(f"invalid YAML: {exc.problem or exc.context}", where) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", Location(file)) from None
    source = Source(file, text)
    if root is None:
        raise SpecError("the file is empty; a spec starts with `rnnc: 1`", Location(file, 1, 1))
    builder = _Builder(source)
    source.value = builder.build(root, (), 0)
    return source


class _Builder:
    def __init__(self, source: Source):
        self.source = source
        self.count = 0
        self.scalars = yaml.SafeLoader("")  # only its scalar constructors are used

    def here(self, node) -> Location:
        mark = node.start_mark
        return Location(self.source.file, mark.line + 1, mark.column + 1)

    def build(self, node, path: Path, depth: int):
        self.count += 1
        if self.count > MAX_VALUES:
            raise SpecError(f"the document expands to more than {MAX_VALUES} values "
                            "(are aliases nested too deep?)", self.here(node))
        if depth > MAX_DEPTH:
            raise SpecError(f"the document nests deeper than {MAX_DEPTH} levels", self.here(node))
        self.source.value_locs[path] = self.here(node)
        if node.tag not in _PLAIN_TAGS:
            raise SpecError(f"YAML tag '{node.tag}' is not allowed in a spec", self.here(node))
        if isinstance(node, yaml.MappingNode):
            return self.build_mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
        if node.style:
            self.source.styles[path] = node.style
        if node.style in ("|", ">"):
            self.source.block_starts[path] = node.start_mark.line + 2
        try:
            return self.scalars.construct_object(node, deep=True)
        except Exception:
            raise SpecError(f"invalid {node.tag.rsplit(':', 1)[-1]} value {node.value!r}",
                            self.here(node)) from None

    def build_mapping(self, node, path: Path, depth: int) -> dict:
        result = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise SpecError("YAML merge keys (<<) are not supported; write the keys out",
                                self.here(key_node))
            if not isinstance(key_node, yaml.ScalarNode):
                raise SpecError("a key must be a plain name", self.here(key_node))
            key = key_node.value
            if key in result:
                raise SpecError(f"{format_path(path + (key,))}: key given twice",
                                self.here(key_node))
            self.source.key_locs[path + (key,)] = self.here(key_node)
            result[key] = self.build(value_node, path + (key,), depth + 1)
        return result


def reads_as_text(word: str) -> bool:
    """Whether ``word``, written bare in YAML (as a spec's names are), reads back as that
    string: ``true``, ``yes``, ``null`` and ``1e3`` do not."""
    try:
        return yaml.safe_load(word) == word
    except yaml.YAMLError:
        return False
