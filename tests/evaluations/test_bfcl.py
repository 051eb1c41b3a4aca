"""BFCL: the real data loads as OpenAI tools, and calls are judged the way BFCL's AST checker judges them."""

from __future__ import annotations

import dataclasses
import math
import re
from functools import cache
from typing import Any

import jsonschema
import pytest

from app.evaluations.bfcl import (
    CATEGORIES,
    PUBLISHED_SCORES,
    BfclCase,
    CallVerdict,
    category_size,
    check_calls,
    load_cases,
    offered_names,
)

SIZES = {"simple_python": 400, "multiple": 200, "parallel": 200, "parallel_multiple": 200, "irrelevance": 240}
API_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@cache
def all_cases() -> dict[str, BfclCase]:
    return {case.id: case for category in CATEGORIES for case in load_cases(category)}


def case_(case_id: str) -> BfclCase:
    return all_cases()[case_id]


def offered(case: BfclCase, original: str) -> str:
    return next(name for name, bfcl_name in case.names.items() if bfcl_name == original)


def required(case: BfclCase, original: str) -> list[str]:
    tool = next(tool for tool in case.tools if tool["function"]["name"] == offered(case, original))
    return tool["function"]["parameters"]["required"]


def first_accepted(values: list[Any]) -> Any:
    """The first accepted value that is not "" (leave-it-out); inside objects, each key's first value."""
    value = next(value for value in values if value != "")
    if isinstance(value, dict):
        return {key: first_accepted(inner) for key, inner in value.items() if "" not in inner}
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return [
            {key: first_accepted(inner) for key, inner in item.items() if "" not in inner} for item in value
        ]
    return value


def correct_calls(case: BfclCase) -> list[tuple[str, dict[str, Any]]]:
    """The calls the answer describes, under the names the model is offered. An argument whose accepted
    values include "" is left out, unless the schema requires it (BFCL checks `required` first)."""
    calls = []
    for expected in case.ground_truth or []:
        ((name, params),) = expected.items()
        needed = required(case, name)
        arguments = {
            param: first_accepted(values)
            for param, values in params.items()
            if "" not in values or param in needed
        }
        calls.append((offered(case, name), arguments))
    return calls


def changed(calls: list[tuple[str, dict]], index: int = 0, drop: str = "", **arguments: Any) -> list:
    """The calls with call `index` given other arguments (and `drop` removed)."""
    name, old = calls[index]
    new = {key: value for key, value in {**old, **arguments}.items() if key != drop}
    return [*calls[:index], (name, new), *calls[index + 1 :]]


def wrong(case: BfclCase, calls: Any) -> str:
    verdict = check_calls(case, calls)
    assert isinstance(verdict, CallVerdict)
    assert not verdict.correct and verdict.reason
    return verdict.reason


def right(case: BfclCase, calls: Any) -> None:
    assert check_calls(case, calls) == CallVerdict(True, "")


# --- loading ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("category", list(SIZES))
def test_every_category_loads_with_its_size(category):
    cases = load_cases(category)
    assert category_size(category) == len(cases) == SIZES[category]
    assert len({case.id for case in cases}) == len(cases)
    for case in cases:
        assert case.category == category
        assert case.messages and all(m["role"] == "user" and m["content"] for m in case.messages)
        assert case.tools and len(case.names) == len(case.tools)
        assert (case.ground_truth is None) == (category == "irrelevance")


def test_categories_and_published_scores_line_up():
    assert list(CATEGORIES) == list(SIZES)
    assert "Qwen3-0.6B (FC)" in PUBLISHED_SCORES
    assert PUBLISHED_SCORES["Hammer2.1-0.5b (FC)"]["simple_python"] == 83.25
    assert PUBLISHED_SCORES["Llama-3.2-1B-Instruct (FC)"]["irrelevance"] == 35.8
    assert all(list(scores) == list(CATEGORIES) for scores in PUBLISHED_SCORES.values())


def test_unknown_category_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="simple_python.*irrelevance"):
        load_cases("live_simple")
    with pytest.raises(ValueError, match="Unknown BFCL category"):
        category_size("java")


def test_every_function_becomes_a_valid_json_schema_tool():
    bfcl_only = {"dict", "float", "tuple", "any"}

    def walk(schema: dict) -> None:
        assert schema.get("type") not in bfcl_only and "optional" not in schema
        for sub in schema.get("properties", {}).values():
            walk(sub)
        if "items" in schema:
            walk(schema["items"])

    tools = [tool for case in all_cases().values() for tool in case.tools]
    assert len(tools) == 1917
    for tool in tools:
        assert tool["type"] == "function" and API_NAME.match(tool["function"]["name"])
        parameters = tool["function"]["parameters"]
        assert parameters["type"] == "object" and set(parameters) == {"type", "properties", "required"}
        jsonschema.validators.validator_for(parameters).check_schema(parameters)
        walk(parameters)


def test_bfcl_types_become_json_schema_types():
    coordinates = case_("multiple_5").tools[1]["function"]["parameters"]["properties"]["coordinates"]
    assert coordinates["type"] == "array" and coordinates["items"] == {"type": "number"}  # BFCL: tuple, float
    data = case_("simple_python_109").tools[0]["function"]["parameters"]["properties"]["data"]
    assert data == {"description": "The training data for the model."}  # BFCL: any
    update_info = case_("simple_python_94").tools[0]["function"]["parameters"]["properties"]["update_info"]
    assert update_info["type"] == "object" and update_info["properties"]["email"]["type"] == "string"
    venue = case_("simple_python_307").tools[0]["function"]["parameters"]["properties"]["venue"]
    assert venue == {"type": "string", "description": "Optional: The venue of the game. Default is 'home'."}


def test_cases_are_copies_the_caller_may_change():
    def route_type(case: BfclCase) -> list[str]:
        return case.tools[0]["function"]["parameters"]["properties"]["route_type"]["enum"]

    first, directions = load_cases("simple_python")[0], load_cases("simple_python")[33]
    first.ground_truth[0]["calculate_triangle_area"]["base"].append(11)
    first.tools[0]["function"]["parameters"]["properties"].clear()
    route_type(directions).append("longest")
    again, directions = load_cases("simple_python")[0], load_cases("simple_python")[33]
    assert again.ground_truth[0]["calculate_triangle_area"]["base"] == [10]
    assert "base" in again.tools[0]["function"]["parameters"]["properties"]
    assert route_type(directions) == ["fastest", "scenic"]


def test_sampling_is_deterministic_and_spread_across_the_file():
    every = [case.id for case in load_cases("simple_python")]
    sample = [case.id for case in load_cases("simple_python", 10)]
    assert sample == [case.id for case in load_cases("simple_python", 10)]
    assert sample == [every[index] for index in range(0, 400, 40)]
    irrelevance = [case.id for case in load_cases("irrelevance")]
    sample = [case.id for case in load_cases("irrelevance", 7)]
    assert sample == [irrelevance[index] for index in (0, 34, 69, 103, 137, 171, 206)]
    assert len(load_cases("parallel", 500)) == 200
    assert load_cases("parallel", 0) == []


def test_dotted_names_are_offered_sanitised_and_map_back():
    case = case_("simple_python_1")
    assert case.tools[0]["function"]["name"] == "math_factorial"
    assert case.names == {"math_factorial": "math.factorial"}
    right(case, [("math_factorial", {"number": 5})])
    right(case, [("math.factorial", {"number": 5})])
    reason = wrong(case, [("math-factorial", {"number": 5})])
    assert reason == "Called math-factorial, expected math.factorial."
    dotted = [name for case in all_cases().values() for name in case.names.values() if "." in name]
    assert len(dotted) > 300


def test_offered_names_are_unique_and_accepted_by_chat_apis():
    names = offered_names(["a.b", "a_b", "a b", "é", "x" * 70, "x" * 70 + ".y"])
    assert names[:4] == ["a_b", "a_b_2", "a_b_3", "_"]
    assert len(set(names)) == len(names) and all(API_NAME.match(name) for name in names)
    assert all(len(set(case.names)) == len(case.tools) for case in all_cases().values())


# --- the checker on the answers' own calls ------------------------------------------------------


@pytest.mark.parametrize("category", ["simple_python", "multiple", "parallel", "parallel_multiple"])
def test_the_answers_own_calls_are_correct(category):
    for case in load_cases(category):
        calls = correct_calls(case)
        assert check_calls(case, calls) == CallVerdict(True, ""), case.id
        if category.startswith("parallel") and case.id != "parallel_178":
            assert check_calls(case, calls[::-1]).correct, case.id


def test_parallel_matching_is_greedy_like_bfcl():
    # The first expected call accepts Microsoft *or* Apple on Jan 1; when Apple's Jan 1 call comes first it
    # takes that one, and the expected Apple Jan 1 call is left without a match. BFCL scores it the same.
    case = case_("parallel_178")
    calls = correct_calls(case)
    right(case, calls)
    assert wrong(case, calls[::-1]) == (
        "No call to get_stock_price matches: Argument 'date': '2022-02-01' is not an accepted value."
    )


# --- each way a call can be wrong ----------------------------------------------------------------


def test_wrong_function():
    case = case_("multiple_0")
    calls = correct_calls(case)
    other = next(name for name in case.names if name != calls[0][0])
    assert wrong(case, [(other, calls[0][1])]) == f"Called {other}, expected triangle_properties.get."


def test_missing_required_argument():
    case = case_("simple_python_0")
    assert wrong(case, changed(correct_calls(case), drop="base")) == "Missing required argument 'base'."


def test_argument_the_answer_needs_may_not_be_left_out():
    case = case_("simple_python_15")  # `method` is optional in the schema, but the user asked for simpson
    calls = correct_calls(case)
    right(case, calls)
    assert wrong(case, changed(calls, drop="method")) == "Missing argument 'method'."


def test_optional_argument_may_be_left_out_or_given():
    case = case_("simple_python_0")  # unit: ["units", ""]
    calls = correct_calls(case)
    assert "unit" not in calls[0][1]
    right(case, calls)
    right(case, changed(calls, unit="Units"))
    assert wrong(case, changed(calls, unit="meters")) == "Argument 'unit': 'meters' is not an accepted value."


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (5.0, "Argument 'base': 5.0 is not an integer."),
        ("10", "Argument 'base': '10' is not an integer."),
        (True, "Argument 'base': True is not an integer."),
        (None, "Argument 'base': None is not an integer."),
        ([10], "Argument 'base': [10] is not an integer."),
    ],
)
def test_wrong_type(value, reason):
    case = case_("simple_python_0")
    assert wrong(case, changed(correct_calls(case), base=value)) == reason


def test_booleans_and_integers_never_stand_in_for_each_other():
    normal = case_("simple_python_111")  # mu: [0], sigma: [1]
    calls = correct_calls(normal)
    assert wrong(normal, changed(calls, mu=False)) == "Argument 'mu': False is not an integer."
    assert wrong(normal, changed(calls, sigma=True)) == "Argument 'sigma': True is not an integer."
    waste = case_("parallel_29")  # population, an object: {"adults": [0], "children": [0], "singles": [1]}
    calls = correct_calls(waste)
    population = {"adults": False, "children": False, "singles": True}
    reason = wrong(waste, changed(calls, 1, population=population))
    assert reason.startswith("No call to waste_calculation.calculate matches: Argument 'population': {")
    assert reason.endswith("} is not an accepted value.")
    regression = case_("simple_python_108")  # standardize: [true]
    reason = wrong(regression, changed(correct_calls(regression), standardize=1))
    assert reason == "Argument 'standardize': 1 is not a boolean."


def test_an_integer_is_a_number_but_must_still_be_accepted():
    case = case_("simple_python_28")  # acceleration (float): [9.8]; initial_velocity (integer): [10]
    calls = correct_calls(case)
    reason = wrong(case, changed(calls, acceleration=10))
    assert reason == "Argument 'acceleration': 10 is not an accepted value."
    reason = wrong(case, changed(calls, acceleration="9.8"))
    assert reason == "Argument 'acceleration': '9.8' is not a number."
    floats = case_("parallel_multiple_187")  # float items, accepted as ints
    right(floats, correct_calls(floats))


def test_unaccepted_value():
    case = case_("simple_python_0")
    reason = wrong(case, changed(correct_calls(case), base=11))
    assert reason == "Argument 'base': 11 is not an accepted value."


def test_unexpected_arguments():
    case = case_("simple_python_0")
    assert wrong(case, changed(correct_calls(case), foo=1)) == "Unexpected argument 'foo'."
    # The schema offers `permeability`, but this call's answer does not list it: BFCL refuses it too.
    magnetic = case_("parallel_multiple_12")
    calls = correct_calls(magnetic)
    index = next(i for i, (name, _) in enumerate(calls) if name == "calculate_magnetic_field")
    reason = wrong(magnetic, changed(calls, index, permeability=0.1))
    assert reason == "No call to calculate_magnetic_field matches: Unexpected argument 'permeability'."


def test_wrong_call_count():
    case = case_("simple_python_0")
    calls = correct_calls(case)
    assert wrong(case, []) == "Expected 1 call, got 0."
    assert wrong(case, calls * 2) == "Expected 1 call, got 2."
    parallel = case_("parallel_0")
    assert wrong(parallel, correct_calls(parallel)[:1]) == "Expected 2 calls, got 1."


def test_parallel_calls_may_come_in_any_order():
    case = case_("parallel_0")  # spotify.play: Taylor Swift 20 minutes, Maroon 5 15 minutes
    calls = correct_calls(case)
    right(case, calls)
    right(case, calls[::-1])
    crossed = [changed(calls, 0, duration=15)[0], changed(calls, 1, duration=20)[1]]
    reason = wrong(case, crossed)
    assert reason == "No call to spotify.play matches: Argument 'duration': 15 is not an accepted value."
    several = case_("parallel_multiple_0")
    right(several, correct_calls(several)[::-1])


def test_other_categories_match_several_calls_in_order():
    case = dataclasses.replace(case_("parallel_0"), category="multiple")
    calls = correct_calls(case)
    right(case, calls)
    assert wrong(case, calls[::-1]) == "Call 1: Argument 'artist': 'Maroon 5' is not an accepted value."


def test_strings_are_normalised_before_comparing():
    case = case_("parallel_multiple_173")  # location: ["New York, NY", "NY", "New York"]
    calls = correct_calls(case)
    for location in ("New York, NY", "new york ny", "NEW-YORK,NY", "new_york."):
        right(case, changed(calls, location=location))
    assert wrong(case, changed(calls, location="Boston")).endswith("'Boston' is not an accepted value.")
    right(case, changed(calls, 2, time_frame="1 Year"))


def test_lists_compare_in_order_with_normalised_strings():
    case = case_("simple_python_108")  # predictors: [["Age", "Income", "Education"]]
    calls = correct_calls(case)
    right(case, changed(calls, predictors=["age", "INCOME", "education "]))
    reason = wrong(case, changed(calls, predictors=["Education", "Income", "Age"]))
    assert reason == "Argument 'predictors': ['Education', 'Income', 'Age'] is not an accepted value."
    reason = wrong(case, changed(calls, predictors=["Age", "Income", 3]))
    assert reason == "Argument 'predictors': item 3 is not a string."


def test_list_items_are_type_checked():
    case = case_("simple_python_83")  # coord1: [[33.4484, -112.074]], items: number
    calls = correct_calls(case)
    reason = wrong(case, changed(calls, coord1=["33.4484", -112.074]))
    assert reason == "Argument 'coord1': item '33.4484' is not a number."
    reason = wrong(case, changed(calls, coord1=[33, -112]))  # ints are numbers, but not these numbers
    assert reason == "Argument 'coord1': [33, -112] is not an accepted value."


def test_objects_compare_key_by_key():
    case = case_("simple_python_94")  # update_info: {"name": ["John Doe"], "email": ["johndoe@email.com"]}
    calls = correct_calls(case)
    right(case, changed(calls, update_info={"email": "JohnDoe@email.com", "name": "john doe"}))
    for update_info in (
        {"name": "John Doe"},
        {"name": "John Doe", "email": "johndoe@email.com", "phone": "555"},
        {"name": "Jane Doe", "email": "johndoe@email.com"},
    ):
        assert wrong(case, changed(calls, update_info=update_info)).endswith("is not an accepted value.")
    assert wrong(case, changed(calls, update_info="John Doe")) == (
        "Argument 'update_info': 'John Doe' is not an object."
    )
    query = case_("simple_python_96")  # a list of objects, each key with its accepted values
    conditions = correct_calls(query)[0][1]["conditions"]
    right(query, changed(correct_calls(query), conditions=conditions))
    reason = wrong(query, changed(correct_calls(query), conditions=conditions[::-1]))
    assert reason.startswith("Argument 'conditions': ")


def test_answers_written_in_another_type_are_compared_as_written():
    # BFCL's "variable" case: `x` is an array of floats, but the answer is the expression the user typed.
    case = case_("parallel_multiple_21")
    calls = correct_calls(case)
    index = next(i for i, (name, _) in enumerate(calls) if name == "linear_regression_fit")
    right(case, changed(calls, index, x="data['sales']"))
    assert wrong(case, changed(calls, index, x="data['costs']")).endswith("is not an accepted value.")
    assert wrong(case, changed(calls, index, x=[1.0, 2.0])).endswith("is not an accepted value.")


def test_irrelevance_is_correct_only_without_a_call():
    case = case_("irrelevance_0")
    right(case, [])
    call = (case.tools[0]["function"]["name"], {})
    assert wrong(case, [call]) == "Irrelevant request: expected no call, got 1."
    assert wrong(case, [call, call]) == "Irrelevant request: expected no call, got 2."


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("calls", "reason"),
    [
        ([("math_factorial", None)], "The arguments are not an object."),
        ([("math_factorial", [1, 2])], "The arguments are not an object."),
        ([("math_factorial", '{"number": 5}')], "The arguments are not an object."),
        ([(123, {"number": 5})], "The function name is not a string."),
        ([(None, None)], "The function name is not a string."),
        ([("math_factorial",)], "A call is not a (name, arguments) pair."),
        ([None], "A call is not a (name, arguments) pair."),
        ("math_factorial", "The calls are not a list."),
        (None, "The calls are not a list."),
        ([("x" * 10_000, {})], "Called " + "x" * 57 + "..., expected math.factorial."),
        (
            [("math_factorial", {"number": 10**5000})],
            "Argument 'number': a very long number is not an accepted value.",
        ),
        ([("math_factorial", {"number": math.nan})], "Argument 'number': nan is not an integer."),
        (
            [("math_factorial", {"number": nested(100_000)})],
            "Argument 'number': [[[[...]]]] is not an integer.",
        ),
        ([("math_factorial", {1: 5})], "Missing required argument 'number'."),
        ([("math_factorial", {"number": 5, 1: 5})], "Unexpected argument 1."),
    ],
)
def test_garbage_gets_a_verdict_not_an_exception(calls, reason):
    assert wrong(case_("simple_python_1"), calls) == reason


def test_deep_garbage_where_values_are_compared():
    deep = nested(100_000)
    any_data = case_("simple_python_109")  # data: any
    assert wrong(any_data, changed(correct_calls(any_data), data=deep)).endswith("is not an accepted value.")
    user = case_("simple_python_94")
    update_info = {"name": deep, "email": "johndoe@email.com"}
    reason = wrong(user, changed(correct_calls(user), update_info=update_info))
    assert reason.endswith("is not an accepted value.")
    primes = case_("parallel_multiple_0")
    reason = wrong(primes, changed(correct_calls(primes), multiples=[3, deep]))
    assert reason == (
        "No call to math_toolkit.sum_of_multiples matches: "
        "Argument 'multiples': item [[[[...]]]] is not an integer."
    )
