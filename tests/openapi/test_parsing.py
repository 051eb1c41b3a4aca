from __future__ import annotations

import json
import time

import pytest

from app.openapi import SpecError, detect_version, load_document
from tests.openapi.conftest import ALL_FIXTURES, fixture_bytes

MINIMAL_YAML = """\
openapi: 3.0.3
info: {title: Tiny, version: "1"}
paths: {}
"""


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_every_fixture_loads_as_a_mapping(name):
    doc = load_document(fixture_bytes(name), name)
    assert isinstance(doc, dict)
    assert "swagger" in doc or "openapi" in doc


def test_json_and_yaml_are_detected_without_a_filename():
    as_yaml = load_document(MINIMAL_YAML)
    as_json = load_document(json.dumps(as_yaml).encode())
    assert as_yaml == as_json == {"openapi": "3.0.3", "info": {"title": "Tiny", "version": "1"}, "paths": {}}


def test_yaml_extras_become_json_values():
    doc = load_document(
        "openapi: 3.0.3\ninfo: {title: t, version: 2024-01-31}\npaths:\n  /a:\n    get:\n"
        "      responses:\n        200: {description: ok}\n"
    )
    assert doc["info"]["version"] == "2024-01-31"
    assert list(doc["paths"]["/a"]["get"]["responses"]) == ["200"]
    json.dumps(doc)  # plain JSON data all the way down


def test_truncated_json_is_refused_with_its_line_and_column():
    text = fixture_bytes("oai-example-uber.swagger2.0.json").decode()
    truncated = text[: text.index('"Price Estimates"') + 8]  # ends inside a string
    with pytest.raises(SpecError) as caught:
        load_document(truncated.encode(), "uber.json")
    message = caught.value.message
    assert "Invalid JSON at line" in message and "column" in message
    line = truncated.count("\n") + 1
    assert f"line {line}," in message
    assert "truncated" in message


def test_json_cut_between_values_is_reported_as_truncated():
    with pytest.raises(SpecError, match=r"line 3, column \d+.*truncated"):
        load_document(b'{\n  "openapi": "3.0.3",\n  "info": {"title": "t"', "spec.json")


def test_invalid_yaml_is_refused_with_its_line():
    with pytest.raises(SpecError) as caught:
        load_document(b"openapi: 3.0.3\ninfo:\n  title: [unclosed\n  version: 1\n", "spec.yaml")
    assert "Invalid YAML at line" in caught.value.message


def test_billion_laughs_is_refused_quickly_without_expanding_it():
    lines = ['lol0: &lol0 "lol"']
    for level in range(1, 10):
        previous = ", ".join([f"*lol{level - 1}"] * 9)
        lines.append(f"lol{level}: &lol{level} [{previous}]")
    bomb = "openapi: 3.0.3\n" + "\n".join(lines) + "\n"
    started = time.perf_counter()
    with pytest.raises(SpecError) as caught:
        load_document(bomb.encode(), "bomb.yaml")
    assert time.perf_counter() - started < 0.5
    assert "alias" in caught.value.message.lower()


def test_too_many_aliases_are_refused():
    items = "\n".join("  - *a" for _ in range(101))
    with pytest.raises(SpecError, match="more than 100 aliases"):
        load_document(f"base: &a {{x: 1}}\nlist:\n{items}\n".encode())


def test_a_few_aliases_are_fine():
    doc = load_document(b"openapi: 3.0.3\nshared: &ok {description: fine}\nagain: *ok\n")
    assert doc["again"] == {"description": "fine"}


def test_a_recursive_alias_is_refused():
    with pytest.raises(SpecError, match="refers to itself"):
        load_document(b"openapi: 3.0.3\nloop: &me [1, *me]\n")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b"openapi: 3.0.3\ntitle: caf\xe9\n", "not UTF-8"),
        ("openapi: 3.0.3".encode("utf-16"), "UTF-16"),
        (b"", "empty"),
        (b"   \n\t\n", "empty"),
        (b"- just\n- a list\n", "must be a mapping"),
        (b'"a string"', "must be a mapping"),
    ],
)
def test_unusable_input_is_refused_with_a_reason(data, expected):
    with pytest.raises(SpecError, match=expected):
        load_document(data)


def test_json_that_only_javascript_accepts_is_refused():
    with pytest.raises(SpecError, match="Invalid JSON"):
        load_document(b'{"openapi": NaN}', "spec.json")


def test_documents_over_the_size_limit_are_refused():
    with pytest.raises(SpecError, match="limit"):
        load_document(b"openapi: 3.0.3\n" + b"#" * 2000, max_bytes=1000)


def test_absurd_nesting_is_refused():
    with pytest.raises(SpecError, match="nested too deeply"):
        load_document(("[" * 5000 + "]" * 5000).encode())


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"swagger": "2.0"}, ("swagger", "2.0")),
        ({"openapi": "3.0.4"}, ("openapi", "3.0.4")),
        ({"openapi": "3.1.0"}, ("openapi", "3.1.0")),
    ],
)
def test_detect_version(doc, expected):
    assert detect_version(doc) == expected


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"info": {}}, "neither"),
        ({"swagger": "1.2"}, "not supported"),
        ({"openapi": "4.0.0"}, "not supported"),
        ({"swagger": 2.0}, "with the quotes"),
    ],
)
def test_detect_version_refuses_what_it_cannot_read(doc, expected):
    with pytest.raises(SpecError, match=expected):
        detect_version(doc)


@pytest.mark.parametrize("date", ["2001-02-30", "0000-01-01", "2001-13-01", "2001-12-14t21:59:43.10-99:00"])
def test_a_yaml_timestamp_of_no_real_date_is_invalid_yaml_not_a_crash(date):
    text = f"openapi: 3.0.3\ninfo:\n  title: t\n  version: '1'\n  x-released: {date}\npaths: {{}}\n"
    with pytest.raises(SpecError) as caught:
        load_document(text.encode(), "spec.yaml")
    assert caught.value.message.startswith(f"Invalid YAML at line 5, column 15: '{date}' is not a real date")
