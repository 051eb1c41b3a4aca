from __future__ import annotations

from app.openapi import example_prompts
from app.openapi.examples import sample_value
from tests.openapi.conftest import PETSTORE_V2, PETSTORE_V3, UBER, USPTO, WEBHOOK, fixture_spec


def test_petstore_prompts_read_like_requests_with_real_values():
    prompts = example_prompts(fixture_spec(PETSTORE_V2))
    assert prompts == [
        "Find pets by status available",
        "Find pet by ID 42",
        "Return pet inventories by status",
        "Find purchase order by ID 5",  # inside the spec's 1..10 bounds
        "Log user into the system with username alice and password s3cret-pass",
        "Log out current logged in user session",
    ]


def test_noun_summaries_get_a_verb_and_values_fit_the_parameter():
    prompts = example_prompts(fixture_spec(UBER), limit=2)
    assert prompts == [
        "Get product types with latitude 37.7749 and longitude -122.4194",
        "Get price estimates with start latitude 37.7749, start longitude -122.4194, "
        "end latitude 37.7749 and end longitude -122.4194",
    ]
    assert "List searchable fields with dataset oa_citations and version v1" in example_prompts(
        fixture_spec(USPTO)
    )


def test_prompts_are_deterministic_distinct_and_limited():
    spec = fixture_spec(PETSTORE_V3)
    first = example_prompts(spec, limit=10)
    assert first == example_prompts(fixture_spec(PETSTORE_V3), limit=10)
    assert len(first) == 10 == len(set(first))
    assert example_prompts(spec, limit=3) == first[:3]
    assert example_prompts(fixture_spec(WEBHOOK)) == []


def test_sample_values_respect_enum_example_format_and_bounds():
    assert sample_value({"type": "string", "enum": ["sold", "pending"]}) == "sold"
    assert sample_value({"type": "string", "example": "doggie"}) == "doggie"
    assert sample_value({"type": "string", "format": "date"}) == "2024-05-17"
    assert sample_value({"type": "string", "format": "email"}) == "alex@example.com"
    assert sample_value({"type": "integer", "minimum": 100}) == 100
    assert sample_value({"type": "integer", "maximum": 3}, "petId") == 3
    assert sample_value({"type": "array", "items": {"type": "string", "enum": ["a"]}}) == ["a"]
