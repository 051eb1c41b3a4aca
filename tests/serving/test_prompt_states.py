"""Saved prompt states on the real default GGUF: a conversation that comes back after another one gets
its prompt state back instead of being read again, and answers exactly as if it had never left."""

from __future__ import annotations

import numpy as np
import pytest

from app.serving.default_model import default_gguf_path
from app.serving.local import LocalModelHolder
from app.serving.prompt_states import MIN_SAVED_TOKENS, common_prefix
from app.serving.types import SamplingParams

GREEDY = SamplingParams(temperature=0.0, max_tokens=12)
# A long system prompt (a tool list stands for the same thing): well over MIN_SAVED_TOKENS tokens.
RULES = " ".join(f"Rule {i}: answer politely and briefly, in plain words." for i in range(40))
LONG = [
    {"role": "system", "content": RULES},
    {"role": "user", "content": "What is the capital of France? Answer in one sentence."},
]
OTHER = [{"role": "user", "content": "Name a colour."}]


def test_common_prefix():
    a = np.array([1, 2, 3, 4])
    assert common_prefix(a, np.array([1, 2, 9])) == 2
    assert common_prefix(a, np.array([1, 2])) == 2
    assert common_prefix(a, np.array([7])) == 0
    assert common_prefix(a, np.array([], dtype=int)) == 0


@pytest.fixture
def holders():
    cached = LocalModelHolder(max_loaded=1, n_threads=2, n_ctx=2048)
    plain = LocalModelHolder(max_loaded=1, n_threads=2, n_ctx=2048, prompt_cache_bytes=0)
    yield cached, plain
    cached.close()
    plain.close()


def test_a_conversation_back_after_another_gets_its_state_back_and_the_same_answer(holders):
    cached, plain = holders
    path = default_gguf_path()
    first = cached.chat(path, LONG, GREEDY)
    assert first.prompt_tokens > MIN_SAVED_TOKENS
    states = cached.prompt_states
    assert (states.saves, states.restores) == (0, 0)

    cached.chat(path, OTHER, GREEDY)  # overwrites the long prompt: its state is saved first
    assert (states.saves, states.restores) == (1, 0) and states.size > 0

    follow_up = [*LONG, {"role": "assistant", "content": first.text}, {"role": "user", "content": "Spain?"}]
    again = cached.chat(path, follow_up, GREEDY)  # starts like the saved prompt: restored, not read again
    assert states.restores == 1
    assert states.saves == 1  # the short prompt it replaced is not worth saving

    # The restored state is the very state the model held before the switch, so the answer is exactly
    # that of a model that never switched (bit for bit: reading the whole prompt again from scratch can
    # round differently, llama.cpp's batches then splitting it elsewhere).
    assert plain.prompt_states is None
    assert plain.chat(path, LONG, GREEDY).text == first.text
    assert plain.chat(path, follow_up, GREEDY).text == again.text


def test_the_budget_bounds_the_states_and_unloading_forgets_them():
    path = default_gguf_path()
    tight = LocalModelHolder(max_loaded=1, n_threads=2, n_ctx=2048, prompt_cache_bytes=1024)
    try:
        tight.chat(path, LONG, GREEDY)
        tight.chat(path, OTHER, GREEDY)
        assert tight.prompt_states.saves == 0 and tight.prompt_states.size == 0  # one state is bigger
    finally:
        tight.close()

    holder = LocalModelHolder(max_loaded=1, n_threads=2, n_ctx=2048)
    try:
        holder.chat(path, LONG, GREEDY)
        holder.chat(path, OTHER, GREEDY)
        assert holder.prompt_states.size > 0
        holder.unload(path)
        assert holder.prompt_states.size == 0
    finally:
        holder.close()


@pytest.mark.parametrize("prompt_cache_bytes", [512 * 1024**2, 0])
def test_warming_reads_the_prompt_ahead_and_the_reply_finds_it_read(prompt_cache_bytes):
    path = default_gguf_path()
    holder = LocalModelHolder(max_loaded=1, n_threads=2, n_ctx=2048, prompt_cache_bytes=prompt_cache_bytes)
    try:
        system = LONG[:1]
        read = holder.warm(path, system)
        assert read > MIN_SAVED_TOKENS and holder.held_tokens(path) == read
        assert holder.warm(path, system) == 0  # held already
        assert "Paris" in holder.chat(path, LONG, GREEDY).text  # the question, after the prompt read ahead
        assert holder.warm(path, OTHER) == 0  # too short to be worth reading ahead
    finally:
        holder.close()
