"""The packaged schema is valid JSON Schema 2020-12, standalone, and our fast checker agrees
with the jsonschema library on it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from ajc_gitops.manifest import schemacheck

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "schemas" / "schedule.schema.json"
EXAMPLES = sorted((ROOT / "examples" / "schedules").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_packaged_schema_is_the_published_one():
    assert schemacheck.packaged_schema() == json.loads(SCHEMA_FILE.read_text())


def test_every_field_is_described_with_examples():
    defs = schemacheck.packaged_schema()["$defs"]
    for name in ("name", "cron", "queue", "task_type", "payload", "payload_base64", "deadline", "max_tries"):
        assert defs[name]["description"], name
        assert defs[name]["examples"], name
    schedule = defs["schedule"]
    assert schedule["additionalProperties"] is False
    assert defs["defaults"]["additionalProperties"] is False
    assert schemacheck.packaged_schema()["additionalProperties"] is False


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_pass_jsonschema(validator, path):
    for document in yaml.safe_load_all(path.read_text()):
        assert list(validator.iter_errors(document)) == []


def test_unknown_schema_keywords_fail_loudly():
    with pytest.raises(ValueError, match="not supported"):
        schemacheck._check_keywords({"type": "object", "oneOf": []})


_names = st.sampled_from(["a", "EMAIL_1", "a:b", "a.b", "", "x y", "é"])
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 2**64),
    st.floats(allow_nan=False),
    _names,
    st.sampled_from(["12h", "1.5h", "90s", "1d", "0", "-1m", "aGVsbG8=", "!!"]),
)
_keys = st.sampled_from(
    ["name", "schedule", "queue", "task_type", "payload", "payload_base64", "deadline", "max_tries", "nmae", "extra"]
)
_entry = st.dictionaries(_keys, _scalars, max_size=9)
_documents = st.one_of(
    st.fixed_dictionaries(
        {"schedules": st.lists(_entry, max_size=3)},
        optional={"defaults": st.dictionaries(_keys, _scalars, max_size=4), "other": _scalars},
    ),
    st.dictionaries(st.sampled_from(["schedules", "defaults", "x"]), st.one_of(_scalars, st.lists(_entry, max_size=2))),
)


@given(_documents)
def test_fast_checker_agrees_with_jsonschema(validator, document):
    assert (not schemacheck.check(document)) == validator.is_valid(document)


def test_schema_works_standalone_with_check_jsonschema(tmp_path):
    # Installed by the test extra, next to the running interpreter.
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert exe, "check-jsonschema missing: install the project with its [test] extra"
    ok = subprocess.run(
        [exe, "--schemafile", str(SCHEMA_FILE), *map(str, EXAMPLES)], capture_output=True, text=True, timeout=120
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("schedules:\n  - name: a\n    shedule: '@daily'\n    task_type: t\n")
    failed = subprocess.run(
        [exe, "--schemafile", str(SCHEMA_FILE), str(bad)], capture_output=True, text=True, timeout=120
    )
    assert failed.returncode == 1
    assert "shedule" in failed.stdout + failed.stderr
