"""`GrammarSampler`: check the sampled token first, the whole vocabulary only when it breaks the grammar."""

from __future__ import annotations

import pytest

from app.serving.default_model import default_gguf_path
from app.serving.grammar import grammar_for, tool_grammar_text
from app.serving.grammar_sampling import GrammarSampler, grammar_text_of
from app.serving.llama_runtime import open_llama
from app.serving.tool_calls import parse_tool_calls, tools_system_prompt
from app.serving.tool_schema import check_tool_call
from app.serving.types import SamplingParams

PETS = {
    "type": "function",
    "function": {
        "name": "findPetsByStatus",
        "description": "Finds pets by status",
        "parameters": {
            "type": "object",
            "properties": {"status": {"type": "string", "enum": ["available", "pending", "sold"]}},
            "required": ["status"],
        },
    },
}
PET_BY_ID = {
    "type": "function",
    "function": {
        "name": "getPetById",
        "description": "Find a pet by its id",
        "parameters": {
            "type": "object",
            "properties": {"petId": {"type": "integer"}},
            "required": ["petId"],
        },
    },
}
TOOLS = [PETS, PET_BY_ID]
QUESTIONS = ["Find all pets that are sold.", "Get the pet with id 42.", "Show me pending pets."]


@pytest.fixture(scope="module")
def llama():
    model = open_llama(model_path=str(default_gguf_path()), n_ctx=1024, n_threads=2, verbose=False)
    yield model
    model.close()


def _messages(question):
    return [{"role": "system", "content": tools_system_prompt(TOOLS)}, {"role": "user", "content": question}]


def _generate(llama, question, params, **options):
    # Evaluate the prompt afresh each time: reusing the cached prefix of the previous reply decodes in
    # other batch shapes, and on some CPUs (AVX2 here) that moves logits enough to flip a near tie
    # ("pending" 31.37 vs "available" 31.25), which would compare numerics, not samplers.
    llama.reset()
    reply = llama.create_chat_completion(
        messages=_messages(question), max_tokens=64, seed=params.seed, **options
    )
    return reply["choices"][0]["message"]["content"]


def test_grammar_text_comes_from_a_llama_grammar_or_a_string():
    grammar = grammar_for(TOOLS, "required")
    assert grammar_text_of(grammar) == tool_grammar_text(TOOLS, "required")
    assert grammar_text_of('root ::= "x"') == 'root ::= "x"'
    with pytest.raises(TypeError):
        grammar_text_of(42)


def test_greedy_gives_the_same_replies_as_llama_cpp_masking_every_step(llama):
    greedy = SamplingParams(temperature=0.0, max_tokens=64)
    grammar = grammar_for(TOOLS, "required")
    for question in QUESTIONS:
        masked = _generate(llama, question, greedy, temperature=0.0, grammar=grammar)
        sampler = GrammarSampler(llama, grammar, greedy)
        try:
            checked = _generate(llama, question, greedy, temperature=0.0, logits_processor=[sampler])
        finally:
            sampler.close()
        assert checked == masked
        assert parse_tool_calls(checked)
        # The point of it: most steps never touch the whole vocabulary.
        assert 0 < sampler.steps and sampler.full_masks < sampler.steps / 2


def test_sampling_at_temperature_stays_inside_the_grammar_and_follows_the_seed(llama):
    grammar = grammar_for(TOOLS, "required")
    replies = []
    for seed in (1, 2, 3, 1):
        params = SamplingParams(temperature=1.2, top_p=0.95, max_tokens=64, seed=seed)
        sampler = GrammarSampler(llama, grammar, params)
        try:
            text = _generate(
                llama, "Find all pets that are sold.", params, temperature=0.0, logits_processor=[sampler]
            )
        finally:
            sampler.close()
        calls = parse_tool_calls(text)
        assert len(calls) == 1, text
        assert check_tool_call(TOOLS, calls[0].name, calls[0].arguments) == []
        replies.append(text)
    assert replies[0] == replies[3]  # same seed, same reply


def test_penalties_under_a_grammar_match_llama_cpps_own(llama):
    """With a grammar that allows any text the sampler is the only difference: its frequency and presence
    penalties must give the reply llama.cpp's penalty sampler gives, and not the unpenalised one."""
    repeat = [{"role": "user", "content": "Write the word 'cat' twenty times, separated by spaces."}]

    def reply(**options):
        llama.reset()
        answer = llama.create_chat_completion(messages=repeat, max_tokens=40, temperature=0.0, **options)
        return answer["choices"][0]["message"]["content"]

    penalised = reply(frequency_penalty=1.5, presence_penalty=0.5)
    assert penalised != reply()
    params = SamplingParams(temperature=0.0, max_tokens=40, frequency_penalty=1.5, presence_penalty=0.5)
    sampler = GrammarSampler(llama, r"root ::= [^\x00]*", params)
    try:
        assert reply(logits_processor=[sampler]) == penalised
    finally:
        sampler.close()


def test_a_grammar_that_allows_nothing_the_model_likes_still_completes(llama):
    """A fixed literal: nearly every sampled token is rejected, so every step takes the full mask."""
    literal = '<tool_call>{"name": "getPetById", "arguments": {"petId": 7}}</tool_call>'
    params = SamplingParams(temperature=0.0, max_tokens=64)
    sampler = GrammarSampler(llama, f'root ::= "{literal.replace(chr(34), chr(92) + chr(34))}"', params)
    try:
        text = _generate(llama, "Say hello.", params, temperature=0.0, logits_processor=[sampler])
    finally:
        sampler.close()
    assert text == literal
    assert sampler.full_masks >= 1


def test_llama_cpp_rejects_a_broken_grammar(llama):
    with pytest.raises(ValueError, match="rejected the grammar"):
        GrammarSampler(llama, "root ::= (", SamplingParams())
