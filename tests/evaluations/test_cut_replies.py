"""An evaluation reply cut at the token limit says so in its reason (a call cut in half parses as no call),
and a remote model's unreadable structured call counts as a wrong, invalid call."""

from __future__ import annotations

import dataclasses

from app.evaluations.cases import dataset_cases
from app.extensions import db
from app.models import LLMModel

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ROW = {
    "messages": [
        {"role": "user", "content": "What's the weather in Oslo?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
            ],
        },
    ],
    "tools": [WEATHER],
}


def test_a_call_cut_at_the_limit_is_named_in_the_reason(app, default_model_id, monkeypatch):
    import jobs.evaluation as evaluation

    (case,) = dataset_cases([ROW], None)
    with app.app_context():
        model = db.session.get(LLMModel, default_model_id)
        whole = evaluation._answer(model, case, constrained=True)
        monkeypatch.setattr(evaluation, "GREEDY", dataclasses.replace(evaluation.GREEDY, max_tokens=6))
        cut = evaluation._answer(model, case, constrained=True)
    # The 135M base model answers this one in words (17 tokens): not cut, so no note.
    assert whole["completion_tokens"] > 6 and "token limit" not in whole["reason"]
    assert not cut["correct"] and cut["completion_tokens"] == 6
    assert cut["reason"].endswith("got no call: the reply was cut at the 6-token limit.")


def test_a_remote_models_unreadable_structured_call_is_wrong_and_invalid_not_a_correct_no_call(
    app, signed_in
):
    """An irrelevance-style case (no call is due): a botched call is still a call the model tried."""
    import jobs.evaluation as evaluation
    from tests.chat.test_broken_calls import remote_model
    from tests.llama_server import serve_http
    from tests.serving.test_remote import _call_delta, chunk, event_stream

    joke = [{"role": "user", "content": "Tell me a joke."}, {"role": "assistant", "content": "No."}]
    row = {"messages": joke, "tools": [WEATHER]}
    (case,) = dataset_cases([row], None)
    assert not case.expects_call
    stream = (
        _call_delta("get_weather", "", "call_1"),
        _call_delta(None, '{"city": '),
        chunk({}, finish_reason="tool_calls"),
    )
    _, admin = signed_in("admin@example.com", is_admin=True)
    with serve_http(lambda request: event_stream(*stream)) as base_url:
        model_id = remote_model(app, admin.id, base_url)
        with app.app_context():
            item = evaluation._answer(db.session.get(LLMModel, model_id), case, constrained=False)
    assert item["correct"] is False and item["valid"] is False
    assert item["reason"].startswith("A call could not be read:") and "get_weather" in item["reason"]
