"""Samples during training: the hand-rolled greedy decoding (backbone + head, KV cache) gives exactly what
transformers' `generate` gives, through a LoRA wrapper too, and leaves the model as it found it."""

from __future__ import annotations

from app.serving.chat_template import TOOL_CHAT_TEMPLATE
from jobs.training.samples import SampleCallback, greedy_answer, greedy_tokens, last_request, stop_ids

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CALL = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
ROW = {
    "messages": [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": "", "tool_calls": [CALL]},
    ],
    "tools": [WEATHER],
}  # fmt: skip


def load(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_model), AutoTokenizer.from_pretrained(tiny_model)


def reference(model, tokenizer, new_tokens: int) -> list[int]:
    """transformers' own greedy decoding of the same prompt, stopped at the same tokens."""
    import torch

    prompt = tokenizer.apply_chat_template(
        ROW["messages"][:-1],
        tools=ROW["tools"],
        chat_template=TOOL_CHAT_TEMPLATE,
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    stops = sorted(stop_ids(tokenizer))
    with torch.no_grad():
        out = model.generate(
            **prompt, max_new_tokens=new_tokens, do_sample=False, eos_token_id=stops, pad_token_id=stops[0]
        )
    ids = out[0, prompt["input_ids"].shape[1] :].tolist()
    return ids[: ids.index(stops[0])] if stops[0] in ids else [i for i in ids if i not in stops]


def test_greedy_decoding_matches_generate_and_restores_training_mode(tiny_model):
    from peft import LoraConfig, get_peft_model

    model, tokenizer = load(tiny_model)
    expected = reference(model, tokenizer, 16)
    assert len(expected) >= 4  # the random tiny model rambles: a real comparison, not two empty answers
    model.train()
    assert greedy_tokens(model, tokenizer, ROW, 16) == expected
    assert model.training
    wrapped = get_peft_model(
        model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    )
    assert greedy_tokens(wrapped, tokenizer, ROW, 16) == expected  # LoRA starts as a no-op
    assert isinstance(greedy_answer(wrapped, tokenizer, ROW, 8), str)


def test_the_callback_samples_at_evaluations_and_at_the_end_unless_cancelled(tiny_model):
    model, tokenizer = load(tiny_model)
    seen = []
    second = {**ROW, "messages": [{"role": "user", "content": "And Bergen?"}, ROW["messages"][1]]}
    stopped = False
    callback = SampleCallback(
        lambda *sample: seen.append(sample), tokenizer, [ROW, second, ROW], lambda: stopped
    )

    class State:
        global_step = 7

    callback.on_evaluate(None, State, None, model=model)
    callback.on_evaluate(None, State, None, model=model)
    assert [(step, request) for step, request, _ in seen] == [(7, "Weather in Oslo?"), (7, "And Bergen?")]
    State.global_step = 9
    callback.on_train_end(None, State, None, model=model)
    assert [(step, request) for step, request, _ in seen[2:]] == [(9, "Weather in Oslo?"), (9, "And Bergen?")]
    stopped = True
    callback.on_train_end(None, State, None, model=model)
    assert len(seen) == 4 and last_request(second) == "And Bergen?"


def test_the_end_skips_a_request_answered_at_the_same_step_unless_the_best_weights_came_back(tiny_model):
    model, tokenizer = load(tiny_model)
    seen = []
    second = {**ROW, "messages": [{"role": "user", "content": "And Bergen?"}, ROW["messages"][1]]}
    callback = SampleCallback(lambda *sample: seen.append(sample), tokenizer, [ROW, second], lambda: False)

    class State:
        global_step = 5

    class Args:
        load_best_model_at_end = False

    callback.on_evaluate(Args, State, None, model=model)  # the last step is an evaluation step
    callback.on_train_end(Args, State, None, model=model)
    assert [request for _, request, _ in seen] == ["Weather in Oslo?", "And Bergen?"]
    Args.load_best_model_at_end = True
    callback.on_train_end(Args, State, None, model=model)
    assert [request for _, request, _ in seen[2:]] == ["Weather in Oslo?", "And Bergen?"]
