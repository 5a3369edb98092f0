"""Checks a manifest document against the packaged JSON Schema.

Why not the jsonschema library here: importing it costs about 130 ms, more than the whole
cold-start budget of a pre-commit hook (4x ``python -c "import yaml"``). The schema uses a small
keyword subset, interpreted below; a keyword outside that subset fails loudly at load time, and
the test suite checks with jsonschema itself that the schema is valid 2020-12 and that both agree
on generated documents.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from functools import cache
from importlib import resources
from typing import Any

from ajc_gitops.manifest.yamlload import JsonPath

_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "title", "description", "examples", "default", "markdownDescription"}
)
_ASSERTIONS = frozenset(
    {
        "$ref",
        "$defs",
        "type",
        "properties",
        "additionalProperties",
        "required",
        "items",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "not",
    }
)
_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


@dataclass(frozen=True, slots=True)
class Violation:
    path: JsonPath
    keyword: str
    message: str
    at_key: bool = False


@cache
def packaged_schema() -> Mapping[str, Any]:
    text = resources.files("ajc_gitops").joinpath("schema/schedule.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    _check_keywords(schema)
    return schema


def _check_keywords(node: Any) -> None:
    if isinstance(node, dict):
        unknown = set(node) - _ANNOTATIONS - _ASSERTIONS
        if unknown:
            raise ValueError(f"schema keyword(s) {sorted(unknown)} are not supported by schemacheck")
        for key, value in node.items():
            if key in ("properties", "$defs"):
                for sub in value.values():
                    _check_keywords(sub)
            elif key in ("items", "not", "additionalProperties") and isinstance(value, dict):
                _check_keywords(value)


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_type(value: Any, expected: str) -> bool:
    actual = type_name(value)
    if expected == "number":
        return actual in ("integer", "number")
    if expected == "integer" and actual == "number":
        return float(value).is_integer()
    return actual == expected


def check(value: Any, schema: Mapping[str, Any] | None = None) -> list[Violation]:
    validate = _packaged_validator() if schema is None else _Compiler(schema).compile(schema)
    found: list[Violation] = []
    validate(value, (), found)
    return found


# A compiled node checks one value and appends what it finds; compiling once per schema keeps
# 10,000 schedules well inside the validate budget.
_Validate = Callable[[Any, JsonPath, list[Violation]], None]


@cache
def _packaged_validator() -> _Validate:
    schema = packaged_schema()
    return _Compiler(schema).compile(schema)


def _accepts_nothing(value: Any, path: JsonPath, found: list[Violation]) -> None:
    return None


class _Compiler:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, _Validate] = {}

    def resolve(self, ref: str) -> _Validate:
        if not ref.startswith("#/"):
            raise ValueError(f"only local $ref are supported, got {ref}")
        if ref not in self.refs:
            node: Any = self.root
            for part in ref[2:].split("/"):
                node = node[part]
            self.refs[ref] = _accepts_nothing  # breaks reference cycles while compiling
            self.refs[ref] = self.compile(node)
        return self.refs[ref]

    def compile(self, schema: Mapping[str, Any]) -> _Validate:
        steps: list[_Validate] = []
        if "$ref" in schema:
            steps.append(self.resolve(schema["$ref"]))
        expected = schema.get("type")
        options: list[str] = [] if expected is None else expected if isinstance(expected, list) else [expected]
        steps.extend(self._object_steps(schema))
        if "items" in schema:
            items = self.compile(schema["items"])

            def check_items(value: Any, path: JsonPath, found: list[Violation]) -> None:
                if isinstance(value, list):
                    for index, item in enumerate(value):
                        items(item, (*path, index), found)

            steps.append(check_items)
        steps.extend(_string_steps(schema))
        steps.extend(_number_steps(schema))
        if "not" in schema:
            negated = self.compile(schema["not"])
            message = _describe_not(schema["not"])

            def check_not(value: Any, path: JsonPath, found: list[Violation]) -> None:
                inner: list[Violation] = []
                negated(value, path, inner)
                if not inner:
                    found.append(Violation(path, "not", message))

            steps.append(check_not)

        def validate(value: Any, path: JsonPath, found: list[Violation]) -> None:
            if options and not any(_is_type(value, option) for option in options):
                wanted = " or ".join(_TYPE_NAMES[o] for o in options)
                actual = _TYPE_NAMES.get(type_name(value), type_name(value))
                found.append(Violation(path, "type", f"must be {wanted}, not {actual}"))
                return
            for step in steps:
                step(value, path, found)

        return validate

    def _object_steps(self, schema: Mapping[str, Any]) -> list[_Validate]:
        if not {"properties", "required", "additionalProperties"} & set(schema):
            return []
        properties = {key: self.compile(sub) for key, sub in schema.get("properties", {}).items()}
        required: tuple[str, ...] = tuple(schema.get("required", ()))
        closed = schema.get("additionalProperties", True) is False

        def check_object(value: Any, path: JsonPath, found: list[Violation]) -> None:
            if not isinstance(value, dict):
                return
            for key in required:
                if key not in value:
                    found.append(Violation(path, "required", f"missing required key {key!r}"))
            for key, item in value.items():
                validate = properties.get(key)
                if validate is not None:
                    validate(item, (*path, key), found)
                elif closed:
                    found.append(_unknown_key((*path, key), key, list(properties)))

        return [check_object]


def _unknown_key(path: JsonPath, key: str, known: list[str]) -> Violation:
    hint = get_close_matches(key, known, n=1, cutoff=0.6)
    suggestion = f"; did you mean {hint[0]!r}?" if hint else f"; expected one of {', '.join(known)}"
    return Violation(path, "additionalProperties", f"unknown key {key!r}{suggestion}", at_key=True)


def _describe_not(schema: Mapping[str, Any]) -> str:
    if set(schema) == {"required"}:
        return "use only one of " + " and ".join(repr(k) for k in schema["required"])
    return "matches a form the schema forbids"


def _string_steps(schema: Mapping[str, Any]) -> list[_Validate]:
    steps: list[_Validate] = []
    if "minLength" in schema:
        low = schema["minLength"]
        too_short = "must not be empty" if low == 1 else f"must be at least {low} characters"

        def min_length(value: Any, path: JsonPath, found: list[Violation]) -> None:
            if isinstance(value, str) and len(value) < low:
                found.append(Violation(path, "minLength", too_short))

        steps.append(min_length)
    if "maxLength" in schema:
        high = schema["maxLength"]

        def max_length(value: Any, path: JsonPath, found: list[Violation]) -> None:
            if isinstance(value, str) and len(value) > high:
                found.append(Violation(path, "maxLength", f"must be at most {high} characters, not {len(value)}"))

        steps.append(max_length)
    if "pattern" in schema:
        pattern = schema["pattern"]
        regex = re.compile(pattern)

        def matches(value: Any, path: JsonPath, found: list[Violation]) -> None:
            if isinstance(value, str) and not regex.search(value):
                found.append(Violation(path, "pattern", f"{value!r} does not match {pattern}"))

        steps.append(matches)
    return steps


def _number_steps(schema: Mapping[str, Any]) -> list[_Validate]:
    steps: list[_Validate] = []
    if "minimum" in schema:
        low = schema["minimum"]

        def minimum(value: Any, path: JsonPath, found: list[Violation]) -> None:
            if _is_number(value) and value < low:
                found.append(Violation(path, "minimum", f"must be at least {low}, not {value}"))

        steps.append(minimum)
    if "maximum" in schema:
        high = schema["maximum"]

        def maximum(value: Any, path: JsonPath, found: list[Violation]) -> None:
            if _is_number(value) and value > high:
                found.append(Violation(path, "maximum", f"must be at most {high}, not {value}"))

        steps.append(maximum)
    return steps


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
