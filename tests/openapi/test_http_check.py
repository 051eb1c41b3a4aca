from __future__ import annotations

import pytest

from app.openapi import CHECK_NAMES, check_request, check_tool_call, normalise
from tests.openapi.conftest import PETSTORE_V2, PETSTORE_V3, UBER, USPTO, fixture_spec

JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
UUID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
PET = {"name": "Rex", "photoUrls": ["https://example.com/rex.jpg"], "status": "available"}
ORDER = {"petId": 1, "quantity": 2, "shipDate": "2024-05-01T10:00:00Z", "status": "placed", "complete": False}


def failing(checks):
    """Names of the checks that failed on their own account (skipped ones are not counted)."""
    assert [check.name for check in checks] == list(CHECK_NAMES)
    return {check.name for check in checks if not check.ok and not check.skipped}


def detail(checks, name):
    return next(check.detail for check in checks if check.name == name)


def good(name, fixture, line, headers=None, body=None):
    """A table row for a correct request; `line` is "METHOD url"."""
    method, url = line.split(" ", 1)
    return pytest.param(fixture, method, url, headers, body, id=name)


def bad(name, fixture, line, check, expected, headers=None, body=None):
    """A table row for a request that only `check` rejects, with `expected` in its detail."""
    method, url = line.split(" ", 1)
    return pytest.param(fixture, method, url, headers, body, check, expected, id=name)


V2, V3 = PETSTORE_V2, PETSTORE_V3
V2_BASE, V3_BASE = "https://petstore.swagger.io/v2", "https://petstore3.swagger.io/api/v3"
USPTO_BASE = "https://developer.uspto.gov/ds-api"
PRICE = "start_latitude=37.77&start_longitude=-122.41&end_latitude=37.79&end_longitude=-122.39"
TIME = "start_latitude=1&start_longitude=2"
VALUES, BODY = "parameter_values", "body_schema"


@pytest.mark.parametrize(
    ("fixture", "method", "url", "headers", "body"),
    [
        good("v2 path param", V2, f"GET {V2_BASE}/pet/42"),
        good("v2 array query", V2, "GET /v2/pet/findByStatus?status=available&status=sold"),
        good("v2 json body", V2, f"POST {V2_BASE}/pet", JSON, PET),
        good("v2 order", V2, f"POST {V2_BASE}/store/order", JSON, ORDER),
        good("v2 form body", V2, "POST /v2/pet/3", FORM, "name=Rex&status=sold"),
        good("v2 header", V2, "DELETE http://petstore.swagger.io/v2/pet/3", {"api_key": "secret"}),
        good("v2 no base path", V2, "GET /user/login?username=ann&password=pw"),
        good("v3 enum query", V3, f"GET {V3_BASE}/pet/findByStatus?status=sold"),
        good("v3 bytes body", V3, "PUT /api/v3/pet", JSON, b'{"name": "Rex", "photoUrls": []}'),
        good("v3 order", V3, f"POST {V3_BASE}/store/order", JSON, ORDER),
        good("v3 path param", V3, f"GET {V3_BASE}/store/order/5"),
        good("uber numbers", UBER, f"GET https://api.uber.com/v1/estimates/price?{PRICE}"),
        good("uber uuid", UBER, f"GET /v1/estimates/time?{TIME}&customer_uuid={UUID}"),
        good("uber int32", UBER, "GET https://api.uber.com/v1/history?offset=0&limit=5"),
        good("uspto root", USPTO, f"GET {USPTO_BASE}/"),
        good("uspto path params", USPTO, f"GET {USPTO_BASE}/oa_citations/v1/fields"),
        good(
            "uspto form", USPTO, f"POST {USPTO_BASE}/oa_citations/v1/records", FORM, "criteria=a%3A1&rows=10"
        ),
    ],
)
def test_a_correct_request_passes_every_check(fixture, method, url, headers, body):
    checks = check_request(fixture_spec(fixture), method, url, headers, body)
    assert failing(checks) == set(), checks
    assert all(check.ok for check in checks)


@pytest.mark.parametrize(
    ("fixture", "method", "url", "headers", "body", "check", "expected"),
    [
        bad(
            "unknown path",
            V2,
            "GET /v2/pets/1",
            "operation_exists",
            "No path of the spec matches '/v2/pets/1'",
        ),
        bad("wrong method", V2, "PATCH /v2/pet/1", "method_matches", "allowed: GET, POST, DELETE"),
        bad(
            "missing query", V2, "GET /v2/pet/findByStatus", "required_parameters", "query parameter 'status'"
        ),
        bad("missing body", V2, "POST /v2/pet", "required_parameters", "the request body"),
        bad("missing one of two", UBER, "GET /v1/products?latitude=1", "required_parameters", "'longitude'"),
        bad("wrong type", V2, "GET /v2/pet/abc", VALUES, "'petId': 'abc' is not of type 'integer'"),
        bad("bad enum v2", V2, "GET /v2/pet/findByStatus?status=sleeping", VALUES, "'sleeping'"),
        bad(
            "bad enum v3", V3, "GET /api/v3/pet/findByStatus?status=sleeping", VALUES, "is not one of ['avail"
        ),
        bad("above maximum", V2, "GET /v2/store/order/11", VALUES, "greater than the maximum of 10"),
        bad("not a number", UBER, "GET /v1/history?limit=ten", VALUES, "'limit'"),
        bad("int32 overflow", UBER, "GET /v1/history?limit=3000000000", VALUES, "not a valid int32"),
        bad(
            "bad uuid",
            UBER,
            f"GET /v1/estimates/time?{TIME}&customer_uuid=nope",
            VALUES,
            "'nope' is not a valid uuid",
        ),
        bad("body field missing", V2, "POST /v2/pet", BODY, "'name' is a required", JSON, {"photoUrls": []}),
        bad("body wrong type", V2, "POST /v2/pet", BODY, "body.photoUrls", JSON, {**PET, "photoUrls": "one"}),
        bad(
            "body wrong type v3",
            V3,
            "POST /api/v3/store/order",
            BODY,
            "body.quantity: 'two' is not of type",
            JSON,
            {**ORDER, "quantity": "two"},
        ),
        bad(
            "body bad date-time",
            V3,
            "POST /api/v3/store/order",
            BODY,
            "'yesterday' is not a valid date-time",
            JSON,
            {**ORDER, "shipDate": "yesterday"},
        ),
        bad(
            "body bad enum", V3, "POST /api/v3/store/order", BODY, "'lost'", JSON, {**ORDER, "status": "lost"}
        ),
        bad("body not JSON", V2, "POST /v2/pet", BODY, "not valid JSON", JSON, '{"name": "Rex",'),
        bad(
            "wrong content type",
            V2,
            "POST /v2/pet",
            BODY,
            "'text/plain'",
            {"Content-Type": "text/plain"},
            "Rex",
        ),
        bad("unexpected body", V2, "GET /v2/pet/1", BODY, "takes no request body", JSON, {"a": 1}),
        bad(
            "form field missing",
            USPTO,
            "POST /ds-api/oa_citations/v1/records",
            BODY,
            "'criteria'",
            FORM,
            "rows=1",
        ),
        bad("unknown query", V2, "GET /v2/pet/1?verbose=true", "no_unknown_parameters", "'verbose'"),
    ],
)
def test_each_defect_is_reported_by_its_own_check(fixture, method, url, headers, body, check, expected):
    checks = check_request(fixture_spec(fixture), method, url, headers, body)
    assert failing(checks) == {check}, checks
    assert expected in detail(checks, check)


def test_checks_after_a_missing_operation_are_skipped():
    checks = check_request(fixture_spec(PETSTORE_V2), "GET", "/v2/nowhere")
    assert [check.ok for check in checks] == [False] * 6
    assert all(check.skipped and check.detail == "skipped: no matching operation" for check in checks[1:])
    wrong_method = check_request(fixture_spec(PETSTORE_V2), "PUT", "/v2/pet/1")
    assert [check.skipped for check in wrong_method] == [False, False, True, True, True, True]


def test_literal_segments_win_over_templated_ones():
    spec = fixture_spec(PETSTORE_V2)
    checks = check_request(spec, "GET", "/v2/pet/findByStatus?status=sold")
    assert detail(checks, "method_matches") == "GET /pet/findByStatus is findPetsByStatus"
    assert (
        detail(check_request(spec, "GET", "/v2/pet/7"), "method_matches") == "GET /pet/{petId} is getPetById"
    )


def test_a_custom_base_url_prefix_is_stripped():
    checks = check_request(
        fixture_spec(PETSTORE_V2),
        "GET",
        "http://localhost:9000/mock/pet/7",
        base_url="http://localhost:9000/mock",
    )
    assert failing(checks) == set()


FORMATS_SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "Formats", "version": "1"},
    "paths": {
        "/bookings": {
            "post": {
                "operationId": "book",
                "parameters": [
                    {
                        "name": "day",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "format": "date"},
                    },
                    {"name": "contact", "in": "query", "schema": {"type": "string", "format": "email"}},
                    {"name": "code", "in": "query", "schema": {"type": "string", "pattern": "^[A-Z]{3}$"}},
                    {"name": "X-Trace", "in": "header", "schema": {"type": "string", "format": "uuid"}},
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["guests"],
                                "properties": {
                                    "guests": {"type": "integer", "minimum": 1},
                                    "site": {"type": "string", "format": "uri"},
                                    "note": {"type": "string", "nullable": True},
                                },
                            }
                        }
                    },
                },
                "responses": {"201": {"description": "Booked."}},
            }
        }
    },
}


@pytest.mark.parametrize(
    ("query", "headers", "body", "check", "expected"),
    [
        ("day=2024-02-30", {}, {"guests": 2}, "parameter_values", "'2024-02-30' is not a valid date"),
        ("day=tomorrow", {}, {"guests": 2}, "parameter_values", "'day'"),
        ("day=2024-05-01&contact=not-an-email", {}, {"guests": 2}, "parameter_values", "not a valid email"),
        ("day=2024-05-01&code=abcd", {}, {"guests": 2}, "parameter_values", "does not match"),
        ("day=2024-05-01", {"x-trace": "123"}, {"guests": 2}, "parameter_values", "not a valid uuid"),
        ("day=2024-05-01", {}, {"guests": 0}, "body_schema", "less than the minimum of 1"),
        ("day=2024-05-01", {}, {"guests": 1, "site": "not a uri"}, "body_schema", "not a valid uri"),
        ("day=2024-05-01", {}, {"guests": 2, "note": 5}, "body_schema", "body.note"),
    ],
)
def test_formats_patterns_and_bounds(query, headers, body, check, expected):
    checks = check_request(normalise(FORMATS_SPEC), "POST", f"/bookings?{query}", headers, body)
    assert failing(checks) == {check}, checks
    assert expected in detail(checks, check)


def test_valid_formats_pass():
    checks = check_request(
        normalise(FORMATS_SPEC),
        "POST",
        "/bookings?day=2024-05-01&contact=ann%40example.com&code=ABC",
        {
            "X-Trace": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
            "Content-Type": "application/json; charset=utf-8",
        },
        {"guests": 2, "site": "https://example.com/a", "note": None},
    )
    assert failing(checks) == set(), checks


def test_a_correct_tool_call_passes():
    spec = fixture_spec(PETSTORE_V2)
    assert failing(check_tool_call(spec, "getPetById", {"petId": 42})) == set()
    assert failing(check_tool_call(spec, "addPet", '{"body": {"name": "Rex", "photoUrls": []}}')) == set()
    assert failing(check_tool_call(spec, "findPetsByStatus", {"status": ["available"]})) == set()
    assert (
        failing(
            check_tool_call(
                fixture_spec(USPTO),
                "perform-search",
                {"dataset": "oa_citations", "version": "v1", "body": {"criteria": "*:*"}},
            )
        )
        == set()
    )


@pytest.mark.parametrize(
    ("name", "arguments", "check", "expected"),
    [
        ("getPets", {}, "operation_exists", "no operation named 'getPets'"),
        ("getPetById", {}, "required_parameters", "path parameter 'petId'"),
        ("getPetById", {"petId": "abc"}, "parameter_values", "'abc' is not of type 'integer'"),
        ("findPetsByStatus", {"status": ["sleeping"]}, "parameter_values", "'sleeping'"),
        ("addPet", {"body": {"name": 3, "photoUrls": []}}, "body_schema", "body.name"),
        ("getPetById", {"petId": 1, "verbose": True}, "no_unknown_parameters", "argument 'verbose'"),
        ("getPetById", "{not json", "required_parameters", "not valid JSON"),
    ],
)
def test_tool_call_defects(name, arguments, check, expected):
    checks = check_tool_call(fixture_spec(PETSTORE_V2), name, arguments)
    assert failing(checks) == {check}, checks
    assert expected in detail(checks, check)


def test_binary_and_xml_bodies_are_accepted_without_a_schema_check():
    spec = fixture_spec(PETSTORE_V3)
    upload = check_request(
        spec,
        "POST",
        "/api/v3/pet/1/uploadImage",
        {"Content-Type": "application/octet-stream"},
        b"\x89PNG\r\n\x1a\n\x00",
    )
    assert failing(upload) == set()
    xml = check_request(
        spec, "POST", "/api/v3/pet", {"Content-Type": "application/xml"}, "<pet><name>Rex</name></pet>"
    )
    assert failing(xml) == set()


def test_a_text_body_with_a_string_schema_is_checked_against_it():
    schema = {"type": "string", "pattern": "^[a-z0-9]{8,}$", "maxLength": 12}
    spec = normalise(
        {
            "openapi": "3.0.3",
            "info": {"title": "Codes", "version": "1"},
            "paths": {
                "/codes": {
                    "post": {
                        "operationId": "addCode",
                        "requestBody": {"content": {"text/plain": {"schema": schema}}},
                        "responses": {"200": {"description": "ok"}},
                    }
                }
            },
        }
    )
    plain = {"Content-Type": "text/plain"}
    assert failing(check_request(spec, "POST", "/codes", plain, "abcd1234")) == set()
    assert failing(check_request(spec, "POST", "/codes", plain, "summit-main")) == {"body_schema"}
    assert failing(check_request(spec, "POST", "/codes", plain, "a" * 20)) == {"body_schema"}


def test_a_runaway_integer_stays_text_and_fails_its_check_instead_of_crashing():
    spec = fixture_spec(PETSTORE_V3)
    checks = check_tool_call(spec, "getPetById", {"petId": "1" * 5000})  # int() refuses 4,300+ digits
    assert failing(checks) == {"parameter_values"}


SHAPES_SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "Shapes", "version": "1"},
    "paths": {
        "/things/{ids}": {
            "put": {
                "operationId": "putThings",
                "parameters": [
                    {
                        "name": "ids",
                        "in": "path",
                        "required": True,
                        "explode": True,
                        "schema": {"type": "array", "items": {"type": "integer"}},
                    },
                    {
                        "name": "X-Tags",
                        "in": "header",
                        "explode": True,
                        "schema": {"type": "array", "items": {"type": "string"}},
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["id", "name"],
                                "properties": {
                                    "id": {"type": "integer", "readOnly": True},
                                    "name": {"type": "string"},
                                    "owner": {
                                        "type": "object",
                                        "required": ["created"],
                                        "properties": {"created": {"type": "string", "readOnly": True}},
                                    },
                                },
                            }
                        }
                    },
                },
                "responses": {"200": {"description": "Stored."}},
            }
        }
    },
}


def test_exploded_path_and_header_arrays_and_read_only_body_fields_check_as_the_spec_means():
    from app.openapi.tools import spec_tools

    spec = normalise(SHAPES_SPEC)
    body = spec.operations[0].request_body.schema
    assert set(body["properties"]) == {"name", "owner"} and body["required"] == ["name"]
    assert "required" not in body["properties"]["owner"] and body["properties"]["owner"]["properties"] == {}
    (tool,) = spec_tools(spec)
    assert "id" not in tool["function"]["parameters"]["properties"]["body"]["properties"]
    arguments = {"ids": [1, 2], "X-Tags": ["a", "b"], "body": {"name": "Rex"}}
    assert failing(check_tool_call(spec, "putThings", arguments)) == set()
    checks = check_request(spec, "PUT", "/things/1,2", {"X-Tags": "a,b", **JSON}, {"name": "Rex"})
    assert failing(checks) == set(), checks
    assert "parameter_values" in failing(check_request(spec, "PUT", "/things/1,x", JSON, {"name": "Rex"}))
