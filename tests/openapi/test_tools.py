from __future__ import annotations

import re

import pytest
from jsonschema.validators import validator_for

from app.openapi import (
    SpecError,
    UnknownOperation,
    normalise,
    operation_tool,
    spec_tools,
    tool_call_to_request,
)
from app.serving.tool_schema import validate_tool_definitions
from tests.openapi.conftest import PETSTORE_V2, PETSTORE_V3, PETSTORE_V31, UBER, USPTO, fixture_spec


def test_petstore_v2_gives_twenty_valid_tools_with_unique_names():
    tools = spec_tools(fixture_spec(PETSTORE_V2))
    assert len(tools) == 20
    names = [tool["function"]["name"] for tool in tools]
    assert len(set(names)) == 20
    for tool in tools:
        assert tool["type"] == "function"
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", tool["function"]["name"])
        assert 0 < len(tool["function"]["description"]) <= 300
        parameters = tool["function"]["parameters"]
        assert parameters["type"] == "object"
        validator_for(parameters).check_schema(parameters)


@pytest.mark.parametrize("name", [PETSTORE_V2, PETSTORE_V3, PETSTORE_V31, UBER, USPTO])
def test_the_playground_accepts_the_generated_tools(name):
    tools, errors = validate_tool_definitions(spec_tools(fixture_spec(name)))
    assert errors == []
    assert len(tools) == len(fixture_spec(name).operations)


def test_tool_arguments_follow_the_parameters_and_body():
    tools = {tool["function"]["name"]: tool["function"] for tool in spec_tools(fixture_spec(PETSTORE_V2))}
    get_pet = tools["getPetById"]
    assert get_pet["description"] == "Find pet by ID"
    assert get_pet["parameters"] == {
        "type": "object",
        "properties": {"petId": {"type": "integer", "format": "int64", "description": "ID of pet to return"}},
        "required": ["petId"],
    }
    add_pet = tools["addPet"]["parameters"]
    assert add_pet["required"] == ["body"]
    assert add_pet["properties"]["body"]["required"] == ["name", "photoUrls"]
    update_user = tools["updateUser"]["parameters"]
    assert set(update_user["properties"]) == {"username", "body"}
    assert tools["deletePet"]["parameters"]["required"] == ["petId"]  # the api_key header is optional


def test_a_parameter_called_body_pushes_the_request_body_to_request_body():
    doc = {
        "openapi": "3.0.3",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/x": {
                "post": {
                    "parameters": [
                        {"name": "body", "in": "query", "schema": {"type": "string"}},
                        {"name": "session", "in": "cookie", "schema": {"type": "string"}},
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
    }
    tool = operation_tool(normalise(doc).operations[0])
    assert list(tool["function"]["parameters"]["properties"]) == ["body", "request_body"]
    assert tool["function"]["parameters"]["required"] == ["request_body"]
    assert tool["function"]["description"] == "POST /x"


def test_long_descriptions_are_trimmed():
    (tool,) = [t for t in spec_tools(fixture_spec(UBER)) if t["function"]["name"] == "get_estimates_price"]
    assert tool["function"]["description"] == "Price Estimates"
    spec = fixture_spec(UBER)
    spec.operations[1].summary = ""
    description = operation_tool(spec.operations[1])["function"]["description"]
    assert len(description) <= 300 and description.endswith("…")


def test_path_parameters_are_substituted_and_percent_encoded():
    spec = fixture_spec(PETSTORE_V2)
    request = tool_call_to_request(spec, "getPetById", {"petId": 42})
    assert (request.method, request.url) == ("GET", "https://petstore.swagger.io/v2/pet/42")
    request = tool_call_to_request(spec, "getUserByName", {"username": "ann lee/x?"})
    assert request.url == "https://petstore.swagger.io/v2/user/ann%20lee%2Fx%3F"
    assert request.path == "/user/ann%20lee%2Fx%3F"


def test_query_parameters_become_a_query_string():
    spec = fixture_spec(PETSTORE_V2)
    request = tool_call_to_request(spec, "findPetsByStatus", '{"status": ["available", "sold"]}')
    assert request.url == "https://petstore.swagger.io/v2/pet/findByStatus?status=available&status=sold"
    request = tool_call_to_request(spec, "loginUser", {"username": "ann", "password": "p&ss w"})
    assert request.url == "https://petstore.swagger.io/v2/user/login?username=ann&password=p%26ss%20w"
    uber = fixture_spec(UBER)
    request = tool_call_to_request(uber, "get_history", {"offset": 0, "limit": 5})
    assert request.url == "https://api.uber.com/v1/history?offset=0&limit=5"


def test_the_body_travels_as_the_body_with_its_media_type():
    spec = fixture_spec(PETSTORE_V3)
    pet = {"name": "Rex", "photoUrls": []}
    request = tool_call_to_request(spec, "updatePet", {"body": pet})
    assert (request.method, request.url) == ("PUT", "https://petstore3.swagger.io/api/v3/pet")
    assert request.body == pet
    assert request.headers == {"Content-Type": "application/json"}
    request = tool_call_to_request(spec, "deletePet", {"petId": 7, "api_key": "secret"})
    assert (request.method, request.url, request.headers) == (
        "DELETE",
        "https://petstore3.swagger.io/api/v3/pet/7",
        {"api_key": "secret"},
    )


def test_base_url_can_be_chosen_and_relative_servers_stay_relative():
    spec = fixture_spec(PETSTORE_V2)
    request = tool_call_to_request(spec, "getPetById", {"petId": 1}, base_url="http://localhost:8080/mock/")
    assert request.url == "http://localhost:8080/mock/pet/1"
    assert (
        tool_call_to_request(fixture_spec(PETSTORE_V31), "getPetById", {"petId": 2}).url == "/api/v31/pet/2"
    )


def test_unknown_arguments_are_kept_aside_not_sent():
    request = tool_call_to_request(fixture_spec(PETSTORE_V2), "getPetById", {"petId": 1, "verbose": True})
    assert request.url.endswith("/pet/1")
    assert request.extra_arguments == {"verbose": True}


def test_unknown_operation_and_bad_arguments_are_refused():
    spec = fixture_spec(PETSTORE_V2)
    with pytest.raises(UnknownOperation, match="getPets"):
        tool_call_to_request(spec, "getPets", {})
    with pytest.raises(SpecError, match="not valid JSON"):
        tool_call_to_request(spec, "getPetById", "{petId: 1")
    with pytest.raises(SpecError, match="JSON object"):
        tool_call_to_request(spec, "getPetById", [1])
