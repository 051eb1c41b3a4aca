"""The cases an evaluation asks: held-out rows picked from a dataset, judged by exact calls."""

from __future__ import annotations

from app.evaluations.cases import bfcl_cases, dataset_cases, judge_exact, spread


def _row(text: str, call: dict | None, split: str | None = None) -> dict:
    answer = {"role": "assistant", "content": ""}
    if call is not None:
        answer["tool_calls"] = [{"type": "function", "function": call}]
    else:
        answer["content"] = "No operation fits that."
    row = {"messages": [{"role": "user", "content": text}, answer], "tools": [{"name": "getPetById"}]}
    if split:
        row["split"] = split
    return row


CALL = {"name": "getPetById", "arguments": '{"petId": 7}'}


def test_spread_takes_evenly_across_the_list_in_order():
    assert spread(list(range(10)), 5) == [0, 2, 4, 6, 8]
    assert spread(list(range(3)), 10) == [0, 1, 2]
    assert spread(list(range(3)), 0) == []


def test_only_held_out_rows_are_asked_when_the_dataset_has_some():
    rows = [_row("train me", CALL, "train"), _row("pet 7 please", CALL, "eval"), _row("sing", None, "eval")]
    cases = dataset_cases(rows, None)
    assert [c.messages[0]["content"] for c in cases] == ["pet 7 please", "sing"]
    assert [c.category for c in cases] == ["call", "no_call"]
    assert cases[0].messages == [
        {"role": "user", "content": "pet 7 please"}
    ]  # the answer is not in the prompt
    assert cases[0].expected == 'getPetById({"petId": 7})'
    assert cases[0].prompt == "pet 7 please"


def test_every_row_is_asked_when_none_is_held_out_and_dpo_pairs_use_the_chosen_call():
    pair = {
        "prompt": [{"role": "user", "content": "pet 7"}],
        "chosen": [{"role": "assistant", "content": "", "tool_calls": [{"function": CALL}]}],
        "rejected": [{"role": "assistant", "content": "no"}],
        "tools": [],
    }
    cases = dataset_cases([_row("a", CALL), pair, {"messages": "broken"}], None)
    assert len(cases) == 2 and cases[1].judge([("getPetById", {"petId": 7})]) == (True, "")


def test_exact_judge_says_what_differs():
    expected = [("getPetById", {"petId": 7})]
    assert judge_exact(expected, [("getPetById", {"petId": 7})]) == (True, "")
    assert judge_exact(expected, [])[1] == "Expected a call to getPetById, got no call."
    assert judge_exact([], [("getPetById", {})])[1] == "Expected no call, got a call to getPetById."
    assert judge_exact(expected, [("deletePet", {"petId": 7})])[1] == "Called deletePet, expected getPetById."
    assert (
        judge_exact(expected, [("getPetById", {"petId": "7"})])[1] == "Argument 'petId' is '7', expected 7."
    )
    assert judge_exact(expected, [("getPetById", {})])[1] == "Missing argument 'petId'."
    assert judge_exact(expected, [("getPetById", {"petId": 7, "x": 1})])[1] == "Unexpected argument 'x'."
    assert judge_exact(expected, [("getPetById", None)])[1] == "The arguments are not an object."
    assert judge_exact(expected, [("getPetById", {"petId": 7})] * 2)[1] == "Expected 1 call(s), got 2."


def test_bfcl_cases_carry_bfcls_judge():
    cases = bfcl_cases(["simple_python", "irrelevance"], 2)
    assert [c.category for c in cases] == ["simple_python"] * 2 + ["irrelevance"] * 2
    assert cases[0].expects_call and not cases[2].expects_call
    assert cases[2].judge([]) == (True, "")
    correct, reason = cases[2].judge([("anything", {})])
    assert not correct and reason
    assert cases[0].expected != "no call"


def test_the_exact_judge_tells_true_from_1_and_takes_parallel_calls_in_any_order():
    from app.evaluations.cases import same_calls

    assert judge_exact([("list", {"limit": 1})], [("list", {"limit": True})])[0] is False
    assert judge_exact([("set", {"on": True})], [("set", {"on": 1.0})])[0] is False
    assert judge_exact([("list", {"limit": 1})], [("list", {"limit": 1.0})]) == (True, "")  # one JSON number
    oslo, lima = ("get_weather", {"city": "Oslo"}), ("get_weather", {"city": "Lima"})
    assert judge_exact([oslo, lima], [lima, oslo]) == (True, "")
    assert not same_calls([oslo, oslo], [oslo, lima])
    assert judge_exact([("f", {"a": [1, {"b": False}]})], [("f", {"a": [1, {"b": 0}]})])[0] is False


def test_a_rows_earlier_calls_and_results_go_out_in_the_shape_openai_insists_on():
    row = {
        "messages": [
            {"role": "user", "content": "Weather in Oslo and the time?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"type": "function", "function": {"name": "get_time", "arguments": {}}},
                    {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}},
                ],
            },
            {"role": "tool", "name": "get_weather", "content": "3 degrees"},
            {"role": "tool", "name": "get_time", "content": "10:00"},
            {"role": "user", "content": "And in Lima?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Lima"}}}],
            },
        ]
    }
    (case,) = dataset_cases([row], None)
    assistant, weather, time_, user = case.messages[1:]
    assert [c["id"] for c in assistant["tool_calls"]] == ["call_1_0", "call_1_1"]
    assert assistant["tool_calls"][1]["function"]["arguments"] == '{"city": "Oslo"}'
    assert weather == {"role": "tool", "tool_call_id": "call_1_1", "content": "3 degrees"}  # by name
    assert time_["tool_call_id"] == "call_1_0" and user["content"] == "And in Lima?"
    assert case.judge([("get_weather", {"city": "Lima"})]) == (True, "")
