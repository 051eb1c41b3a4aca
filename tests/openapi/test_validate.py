from __future__ import annotations

import copy

import pytest

from app.openapi import SpecError, normalise, validate_document
from app.openapi.validate import spec_validator
from tests.openapi.conftest import ALL_FIXTURES, PETSTORE_V3, PETSTORE_V31, fixture_doc

EXTERNAL = "https://example.com/x.yaml#/Pet"


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_every_fixture_is_valid(name):
    assert validate_document(fixture_doc(name)) == []


def _with_external_ref() -> dict:
    doc = copy.deepcopy(fixture_doc(PETSTORE_V3))
    doc["paths"]["/pet"]["post"]["requestBody"]["content"]["application/json"]["schema"] = {"$ref": EXTERNAL}
    return doc


def test_an_external_ref_is_refused_by_name_and_place_without_touching_the_network(no_network):
    problems = validate_document(_with_external_ref())
    assert len(problems) == 1
    assert EXTERNAL in problems[0].message
    assert problems[0].location == "paths./pet.post.requestBody.content.application/json.schema"
    assert problems[0].location in problems[0].message
    assert no_network == []


def test_normalise_refuses_an_external_ref_too():
    with pytest.raises(SpecError, match="x.yaml"):
        normalise(_with_external_ref())


def test_the_validator_itself_refuses_to_fetch_even_when_asked_directly(no_network):
    doc = _with_external_ref()
    doc["paths"]["/pet"]["parameters"] = [{"$ref": "http://example.com/params.yaml#/limit"}]
    doc["paths"]["/elsewhere"] = {"$ref": "https://example.com/paths.yaml#/pets"}
    with pytest.raises(Exception, match="example.com"):
        list(spec_validator(doc).iter_errors())
    assert no_network == []


@pytest.mark.parametrize("ref", ["other.yaml#/Pet", "../schemas/pet.json", "file:///etc/passwd"])
def test_relative_and_file_refs_count_as_external(ref):
    doc = copy.deepcopy(fixture_doc(PETSTORE_V3))
    doc["components"]["schemas"]["Order"]["properties"]["pet"] = {"$ref": ref}
    problems = validate_document(doc)
    assert [problem.location for problem in problems] == ["components.schemas.Order.properties.pet"]
    assert ref in problems[0].message


@pytest.mark.parametrize("path", ["/y/{unclosed", "/y/closed}", "/y/{a{b}}", "/y/{}", "/y/{a/b}"])
def test_a_path_with_unbalanced_braces_is_named(path):
    doc = copy.deepcopy(fixture_doc(PETSTORE_V3))
    doc["paths"][path] = doc["paths"].pop("/pet/{petId}")
    (problem,) = validate_document(doc)
    assert problem.message == f"The path {path!r} is not a path template: each parameter is one {{name}}."
    assert problem.location == f"paths.{path}"


def test_references_that_only_lead_to_each_other_are_named():
    doc = copy.deepcopy(fixture_doc(PETSTORE_V3))
    schemas = doc["components"]["schemas"]
    schemas["Loop"] = {"$ref": "#/components/schemas/Loop"}
    schemas["Ping"] = {"$ref": "#/components/schemas/Pong", "description": "ping"}
    schemas["Pong"] = {"$ref": "#/components/schemas/Ping"}
    schemas["Order"]["properties"]["loop"] = {"$ref": "#/components/schemas/Loop"}
    messages = sorted(problem.message for problem in validate_document(doc))
    assert messages == [
        "The references components.schemas.Loop → components.schemas.Loop only lead to each other: "
        "no schema is behind them.",
        "The references components.schemas.Ping → components.schemas.Pong → components.schemas.Ping only "
        "lead to each other: no schema is behind them.",
    ]
    # A schema that refers to itself through a property is a tree, not a loop.
    tree = copy.deepcopy(fixture_doc(PETSTORE_V3))
    tree["components"]["schemas"]["Node"] = {
        "type": "object",
        "properties": {"children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}},
    }
    assert validate_document(tree) == []


def test_a_ref_to_nothing_is_reported():
    doc = copy.deepcopy(fixture_doc(PETSTORE_V3))
    doc["components"]["schemas"]["Order"]["properties"]["pet"] = {"$ref": "#/components/schemas/Missing"}
    problems = validate_document(doc)
    assert len(problems) == 1
    assert "points to nothing" in problems[0].message


def test_refs_to_a_schema_id_inside_the_document_are_internal():
    # The 3.1 code-first fixture refers to schemas by their `$id` (and an `$anchor`), not by `#/...`.
    doc = fixture_doc(PETSTORE_V31)
    assert validate_document(doc) == []
    pet = normalise(doc).operation("addPet").request_body.schema
    assert pet["properties"]["petDetails"]["properties"]["tag"]["properties"]["name"] == {"type": "string"}
    assert pet["properties"]["petDetailsId"]["type"] == "integer"


def test_schema_problems_are_reported_with_their_place():
    doc = copy.deepcopy(fixture_doc(PETSTORE_V3))
    doc["info"]["title"] = 5
    del doc["paths"]["/pet"]["put"]["responses"]
    problems = validate_document(doc)
    assert {problem.location for problem in problems} == {"info.title", "paths./pet.put"}
    assert any("responses" in problem.message for problem in problems)


def test_an_undetectable_version_is_one_problem():
    problems = validate_document({"info": {"title": "t", "version": "1"}, "paths": {}})
    assert len(problems) == 1
    assert "neither" in problems[0].message


def test_an_invalid_3_1_schema_is_still_reported_where_it_is():
    doc = copy.deepcopy(fixture_doc(PETSTORE_V31))
    doc["components"]["schemas"]["Tag"]["properties"]["name"]["type"] = 5
    problems = validate_document(doc)
    assert len(problems) == 1
    assert problems[0].location == "components.schemas.Tag.properties.name.type"


def test_a_ref_that_is_no_url_at_all_is_reported_not_raised():
    doc = copy.deepcopy(fixture_doc(PETSTORE_V3))
    doc["components"]["schemas"]["Order"]["properties"]["pet"] = {"$ref": "http://[bad/x"}  # urljoin raises
    problems = validate_document(doc)
    assert [problem.location for problem in problems] == ["components.schemas.Order.properties.pet"]
    assert "http://[bad/x" in problems[0].message


def test_a_schema_id_that_is_no_url_names_nothing_and_breaks_nothing():
    doc = copy.deepcopy(fixture_doc(PETSTORE_V31))
    first = next(iter(doc["components"]["schemas"].values()))
    first["$id"] = "http://[bad"
    assert all("[bad" not in problem.message for problem in validate_document(doc))
