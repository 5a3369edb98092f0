"""Safe YAML to plain values, with the file:line:col of every value kept beside them.

Configured once here: libyaml's safe composer when present, our own construction of values so
that timestamps stay strings, duplicate keys and YAML 1.1 surprises (`on:` read as a boolean)
become problems instead of being silently coerced, and aliases cannot blow up memory.
Schema and semantics live in ``load.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from ajc_gitops.problems import Location, Problem

try:  # libyaml makes loading 10,000 schedules several times faster
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover (pure-Python PyYAML build)
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
# Counted over the value tree with aliases expanded: a few aliases of aliases ("billion
# laughs") must not turn a small file into gigabytes of payload.
MAX_EXPANDED_NODES = 1_000_000
# float64's range (about 1.8e308): no field holds more (max_tries is an int64, a payload
# number is a float64 in Go). Refused here because past Python's 4,300-digit limit an integer
# cannot even be printed in a message.
MAX_INT_BITS = 1024

JsonPath = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"
_SCALAR_TAGS = {
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
}


@dataclass(slots=True)
class Document:
    """One YAML document as plain values. ``marks`` gives the (line, col) of each value and
    ``key_marks`` that of the key holding it; ``plain_text`` keeps the source text of unquoted
    scalars that YAML turned into something other than a string."""

    path: str
    value: Any
    line: int
    col: int
    marks: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)
    plain_text: dict[JsonPath, str] = field(default_factory=dict)
    # Values that could not be read (already reported): the loader says nothing more of them.
    unreadable: set[JsonPath] = field(default_factory=set)

    def location(self, path: JsonPath, *, key: bool = False) -> Location:
        """The closest known location of ``path``: the key itself when asked, else its value,
        else its nearest ancestor."""
        probe = path
        while True:
            mark = (self.key_marks.get(probe) if key else None) or self.marks.get(probe)
            if mark is not None:
                return Location(self.path, mark[0], mark[1])
            if not probe:
                return Location(self.path, self.line, self.col)
            probe = probe[:-1]


class _TooBig(Exception):
    pass


class _Builder:
    def __init__(self, doc: Document, problems: list[Problem]) -> None:
        self.doc = doc
        self.problems = problems
        self.expanded = 0
        self._constructor = SafeConstructor()

    def problem(self, node: yaml.Node, message: str) -> None:
        mark = node.start_mark
        self.problems.append(Problem(Location(self.doc.path, mark.line + 1, mark.column + 1), message))

    def build(self, node: yaml.Node, path: JsonPath, depth: int) -> Any:
        self.expanded += 1
        if self.expanded > MAX_EXPANDED_NODES:
            raise _TooBig
        self.doc.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if depth > MAX_DEPTH:
            self.problem(node, f"nested more than {MAX_DEPTH} levels deep; flatten the value")
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        raise TypeError(f"unexpected YAML node {type(node).__name__}")

    def _scalar(self, node: yaml.ScalarNode, path: JsonPath) -> Any:
        tag = node.tag
        if tag in (_STR, _TIMESTAMP):
            # Timestamps stay text: a payload date must reach workers exactly as written.
            return node.value
        if tag not in _SCALAR_TAGS:
            self.problem(node, f"unsupported YAML tag {tag}; write plain YAML values")
            return None
        value, error = self._construct(node)
        if error is not None:
            self.problem(node, error)
            self.doc.unreadable.add(path)
            return None
        if not node.style:  # libyaml reports plain scalars as '', PyYAML as None
            self.doc.plain_text[path] = str(node.value)
        return value

    def _construct(self, node: yaml.ScalarNode) -> tuple[Any, str | None]:
        """The value of a null/bool/int/float scalar, or why it has none."""
        try:
            value = self._constructor.construct_object(node)
        except yaml.YAMLError as exc:
            return None, f"cannot read value: {getattr(exc, 'problem', exc)}"
        except (ValueError, KeyError, IndexError, OverflowError) as exc:
            # PyYAML's constructors raise these on an explicit tag over other text (!!int abc,
            # !!bool maybe, !!int '' an IndexError) and on integers past Python's digit limit.
            if isinstance(exc, ValueError) and "digits" in str(exc):
                return None, _too_large(node.value)
            kind = node.tag.rsplit(":", 1)[-1]
            return None, f"cannot read {_abbrev(node.value)!r} as {kind}; write a {kind} or drop the !!{kind} tag"
        if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            return None, _too_large(node.value)
        return value, None

    def _pairs(self, node: yaml.MappingNode) -> Iterator[tuple[yaml.Node, yaml.Node]]:
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in sources:
                    if isinstance(source, yaml.MappingNode):
                        yield from self._pairs(source)
                    else:
                        self.problem(source, "a merge key (<<) must refer to a mapping")
            else:
                yield key_node, value_node

    def _mapping(self, node: yaml.MappingNode, path: JsonPath, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, int] = {}
        for key_node, value_node in self._pairs(node):
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(key_node, "mapping keys must be plain strings")
                continue
            key = str(key_node.value)
            if key_node.tag != _STR:
                reading, error = self._construct(key_node) if key_node.tag in _SCALAR_TAGS else (key, None)
                what = f"{type(reading).__name__} {_abbrev(repr(reading))}" if error is None else "unreadable"
                self.problem(
                    key_node, f'key {_abbrev(key)!r} is read by YAML as {what}, not as a string; quote it: "{key}"'
                )
            line = key_node.start_mark.line + 1
            if key in first_seen:
                self.problem(
                    key_node,
                    f"duplicate key {key!r} (first at line {first_seen[key]}); remove one of them",
                )
            first_seen[key] = line
            child = (*path, key)
            self.doc.key_marks[child] = (line, key_node.start_mark.column + 1)
            result[key] = self.build(value_node, child, depth + 1)
        return result


def _abbrev(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:20]}...{text[-8:]} ({len(text):,} characters)"


def _too_large(text: str) -> str:
    return (
        f"number {_abbrev(text)} is larger than any field holds (max_tries is an int64, a payload "
        "number a float64); write a smaller number, or quote it to keep it as text"
    )


def _read_text(path: Path, display: str) -> tuple[str | None, Problem | None]:
    where = Location(display)
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            return None, Problem(
                where,
                f"file is {size / 1_048_576:.1f} MiB, above the "
                f"{MAX_MANIFEST_BYTES // 1_048_576} MiB limit for a manifest; split it into smaller files",
            )
        data = path.read_bytes()
    except OSError as exc:
        return None, Problem(where, f"cannot read file: {exc.strerror or exc}")
    if b"\x00" in data:
        return None, Problem(where, "binary file (contains NUL bytes), not a YAML manifest")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, Problem(
            Location(display, line, 1),
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); save the file as UTF-8",
        )
    return text, None


def load_documents(path: Path, display: str) -> tuple[list[Document], list[Problem]]:
    """Every non-empty YAML document in ``path``, or the problems that stop reading it."""
    text, problem = _read_text(path, display)
    if problem is not None or text is None:
        return [], [problem] if problem else []
    problems: list[Problem] = []
    documents: list[Document] = []
    try:
        for node in yaml.compose_all(text, Loader=_Loader):
            if node is None or (isinstance(node, yaml.ScalarNode) and node.value == "" and not node.style):
                continue  # an empty document, such as after a trailing '---'
            doc = Document(display, None, node.start_mark.line + 1, node.start_mark.column + 1)
            builder = _Builder(doc, problems)
            try:
                doc.value = builder.build(node, (), 0)
            except _TooBig:
                problems.append(
                    Problem(
                        Location(display, doc.line, doc.col),
                        "document expands to more than "
                        f"{MAX_EXPANDED_NODES:,} values through aliases; remove the alias chains",
                    )
                )
                continue
            documents.append(doc)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(display, mark.line + 1, mark.column + 1) if mark else Location(display)
        what = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        problems.append(Problem(where, f"invalid YAML: {what}; fix the YAML at this position"))
    except yaml.reader.ReaderError as exc:
        # Not a MarkedYAMLError: its str() is two lines naming "<unicode string>" (found by
        # tests/props/test_fuzz_inputs.py), so place it ourselves.
        before = text[: exc.position]
        line = before.count("\n") + 1
        col = exc.position - (before.rfind("\n") + 1) + 1
        char = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        problems.append(
            Problem(
                Location(display, line, col),
                f"invalid YAML: character {char} is not allowed in YAML ({exc.reason}); remove it",
            )
        )
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        problems.append(Problem(Location(display), f"YAML error: {first}"))
    except RecursionError:
        problems.append(Problem(Location(display), "YAML nested too deeply to read"))
    return documents, problems
