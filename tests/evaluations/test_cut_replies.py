"""An evaluation reply cut at the token limit says so in its reason: a call cut in half parses as no call."""

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
