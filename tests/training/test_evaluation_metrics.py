"""What a run's evaluation measures: each reply judged against its expected turn, the rates the
config's `evaluation.metrics` picks, and how the run page and the model card word them."""

from __future__ import annotations

from app.training.evaluation_text import metric_parts, metrics_text
from jobs.training.evaluate import EvalReport, judge_reply
from tests.training.test_compare_runs import make_run

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
OSLO = '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'
BERGEN = '<tool_call>{"name": "get_weather", "arguments": {"city": "Bergen"}}</tool_call>'


def call(city: str) -> dict:
    return {"type": "function", "function": {"name": "get_weather", "arguments": f'{{"city": "{city}"}}'}}


def test_the_expected_call_as_written_is_correct_and_an_exact_match():
    judged = judge_reply(OSLO, {"role": "assistant", "content": "", "tool_calls": [call("Oslo")]}, [WEATHER])
    assert judged.valid and judged.correct and judged.exact and judged.right_tool
    assert judged.got == [("get_weather", {"city": "Oslo"})]


def test_parallel_calls_in_another_order_are_correct_but_not_exact():
    expected = {"role": "assistant", "tool_calls": [call("Oslo"), call("Bergen")]}
    judged = judge_reply(BERGEN + OSLO, expected, [WEATHER])
    assert judged.correct and not judged.exact


def test_words_around_the_call_break_only_the_exact_match():
    expected = {"role": "assistant", "content": None, "tool_calls": [call("Oslo")]}
    judged = judge_reply("Let me check. " + OSLO, expected, [WEATHER])
    assert judged.correct and judged.valid and not judged.exact


def test_a_prose_answer_matches_exactly_up_to_whitespace_only():
    expected = {"role": "assistant", "content": "Oslo is the capital\nof Norway."}
    assert judge_reply("  Oslo is the capital of   Norway. ", expected, []).exact
    judged = judge_reply("Oslo is the capital of Norway!", expected, [])
    assert judged.correct and not judged.exact  # no call expected, none made: right for accuracy


def test_a_botched_call_is_neither_correct_valid_nor_exact():
    expected = {"role": "assistant", "tool_calls": [call("Oslo")]}
    judged = judge_reply('<tool_call>{"name": "get_weather", "arguments": </tool_call>', expected, [WEATHER])
    assert not (judged.valid or judged.correct or judged.exact)


def test_a_number_argument_is_not_the_same_as_a_boolean_in_an_exact_match():
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    expected = {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": {"x": True}}}]}
    one = '<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call>'
    true = one.replace("1}}", "true}}")
    assert not judge_reply(one, expected, [tool]).exact and judge_reply(true, expected, [tool]).exact


def test_the_report_holds_the_chosen_rates_only():
    report = EvalReport(rows=4, expected_calls=2, valid=3, correct=2, exact=1, right_tool=2)
    assert report.metrics() == {
        "eval_rows": 4,
        "tool_call_accuracy": 0.5,
        "right_tool_rate": 1.0,
        "valid_call_rate": 0.75,
        "exact_match": 0.25,
    }
    assert report.metrics(["exact_match"]) == {"eval_rows": 4, "exact_match": 0.25}
    assert report.metrics(["tool_call_accuracy"]) == {
        "eval_rows": 4,
        "tool_call_accuracy": 0.5,
        "right_tool_rate": 1.0,
    }
    skipped = EvalReport(rows=1, skipped=2).metrics(["valid_call_rate"])
    assert skipped == {"eval_rows": 1, "valid_call_rate": 0.0, "skipped_rows": 2}


def test_metrics_read_as_words_in_a_fixed_order():
    evaluation = {"eval_rows": 9, "exact_match": 0.333, "eval_loss": 1.23456, "tool_call_accuracy": 1}
    assert metric_parts(evaluation) == [
        ("tool-call accuracy", "100%"),
        ("exact match", "33%"),
        ("eval loss", "1.2346"),
    ]
    assert metrics_text(evaluation) == "tool-call accuracy 100%, exact match 33%, eval loss 1.2346"
    assert metric_parts(None) == [] and metric_parts({"teacher": {}, "eval_rows": 3}) == []
    assert metric_parts({"valid_call_rate": True, "exact_match": "0.5"}) == []  # not numbers: not shown


def test_the_run_page_shows_the_chosen_measures(app, signed_in):
    client, user = signed_in()
    evaluation = {"eval_rows": 5, "exact_match": 0.4, "eval_loss": 0.75, "model": "run1-Q4_K_M.gguf"}
    run_id = make_run(app, user, "r", "knowledge_dense", stage="done", evaluation=evaluation)
    page = client.get(f"/runs/{run_id}").get_data(as_text=True)
    shown = page.split('id="evaluation-metrics"', 1)[1].split("</p>", 1)[0]
    assert "On 5 held-out rows (run1-Q4_K_M.gguf)" in shown
    assert "exact match <strong>40%</strong>" in shown and "eval loss <strong>0.7500</strong>" in shown
    assert "tool-call accuracy" not in shown

    loss_only = make_run(app, user, "l", "knowledge_dense", stage="done", evaluation={"eval_loss": 0.5})
    shown = client.get(f"/runs/{loss_only}").get_data(as_text=True).split('id="evaluation-metrics"', 1)[1]
    assert shown.startswith(">Held out during training:") and "Held-out answers" not in shown

    teacher = {"teacher": {"rows": 2}}
    teacher_only = make_run(app, user, "t", "knowledge_dense", stage="done", evaluation=teacher)
    assert 'id="evaluation-metrics"' not in client.get(f"/runs/{teacher_only}").get_data(as_text=True)
