"""Reading calls out of reply text: the readable ones, and the attempts that could not be read."""

from __future__ import annotations

import pytest

from app.serving.tool_calls import parse_tool_calls, unparsed_tool_calls

GOOD = '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'


@pytest.mark.parametrize(
    ("text", "readable", "unreadable"),
    [
        (GOOD, 1, 0),
        ("Plain words, no call.", 0, 0),
        ('<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"</tool_call>', 0, 1),
        ('<tool_call>{"name": "get_weather", "arguments": "oops"}</tool_call>', 0, 1),
        ('<tool_call>{"arguments": {}}</tool_call>', 0, 1),
        ('<tool_call>{"name": "get_weather", "arguments": {"ci', 0, 1),  # cut at the token limit
        (GOOD + '\n<tool_call>{"name": "x", "arguments": null}</tool_call>', 1, 1),
        ('{"name": "get_weather", "arguments": {"city": "Oslo"}}', 1, 0),  # a bare call is not tagged
    ],
)
def test_every_tagged_block_is_either_a_call_or_an_unreadable_attempt(text, readable, unreadable):
    assert len(parse_tool_calls(text)) == readable
    assert len(unparsed_tool_calls(text)) == unreadable


def test_a_block_the_reply_ends_inside_can_be_left_to_the_cut_at_max_tokens_report():
    cut = GOOD + ' <tool_call>{"name": "get_weather", "arguments": {"ci'
    assert len(unparsed_tool_calls(cut)) == 1 and unparsed_tool_calls(cut, include_cut=False) == []
    broken_then_closed = '<tool_call>{"name": 5}</tool_call>'
    assert len(unparsed_tool_calls(broken_then_closed, include_cut=False)) == 1
