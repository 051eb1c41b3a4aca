"""Configs the linter can only warn about stop the run before training with a reason, not deep in peft."""

from __future__ import annotations

import pytest

from app.configs.schema import parse_config
from app.configs.templates import TEMPLATES_BY_KEY


def config_with(section: str = "training", **changes):
    """The SFT template's config with `changes` in one of its sections."""
    raw = TEMPLATES_BY_KEY["sft_toolbench"].build()
    raw[section].update(changes)
    config, problems = parse_config(raw)
    assert config is not None, problems
    return config


def test_lora_targets_that_name_no_module_stop_the_run_naming_the_real_ones(tiny_model):
    from transformers import AutoModelForCausalLM

    from jobs.training.trainer import TrainingRefused, check_lora_targets

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    with pytest.raises(TrainingRefused, match=r"\(c_attn\) is a module of this model.*q_proj"):
        check_lora_targets(model, config_with(lora_target_modules=["c_attn"]))
    check_lora_targets(model, config_with(lora_target_modules=["c_attn", "q_proj"]))  # one is enough
    for unfit, kind in [("rotary_emb", "LlamaRotaryEmbedding"), ("input_layernorm", "LlamaRMSNorm")]:
        with pytest.raises(TrainingRefused, match=rf"LoRA cannot adapt {unfit} \({kind}\).*q_proj"):
            check_lora_targets(model, config_with(lora_target_modules=["q_proj", unfit]))
    check_lora_targets(model, config_with(lora_target_modules=["q_proj", "embed_tokens"]))
    check_lora_targets(model, config_with(lora_target_modules="all-linear"))


def test_the_split_rounds_as_the_linter_now_counts():
    from jobs.training.data import split_rows

    rows = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}
            for i in range(100)]  # fmt: skip
    assert split_rows(rows, 0.004, 0.1, seed=1).train == []  # 0.4 of a row: none, hence the warning
    assert len(split_rows(rows, 0.006, 0.1, seed=1).train) == 1


def test_an_evaluation_set_replaces_the_held_out_rows(app, signed_in):
    import logging

    from app.datasets.services import store_rows
    from jobs.train import _evaluation_rows

    _, user = signed_in()
    rows = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}],
             "split": "eval" if i < 3 else "train"} for i in range(10)]  # fmt: skip
    held_out = [{"messages": [{"role": "user", "content": "held"}, {"role": "assistant", "content": "b"}]}]
    log = logging.getLogger("test")
    with app.test_request_context():
        store_rows(user.id, "exam", "sft", rows, source="generated", source_format="toolsmith")
        chosen = _evaluation_rows(user.id, config_with("evaluation", eval_set="exam"), held_out, log)
        assert [row["messages"][0]["content"] for row in chosen] == ["q0", "q1", "q2"]  # its held-out rows
        assert _evaluation_rows(user.id, config_with("evaluation", eval_set=None), held_out, log) == held_out
        gone = config_with("evaluation", eval_set="deleted meanwhile")
        assert _evaluation_rows(user.id, gone, held_out, log) == held_out


def test_the_configs_tools_are_offered_in_rows_that_offer_none():
    from jobs.training.data import with_config_tools
    from tests.training.test_pipeline import WEATHER, sft_rows

    bare = {"name": "now", "description": "The time", "parameters": {"type": "object", "properties": {}}}
    rows = [{**sft_rows(1)[0], "tools": []}, sft_rows(1)[0]]
    offered = with_config_tools(rows, [bare])
    assert (
        offered[0]["tools"][0]["function"]["name"] == "now" and offered[0]["tools"][0]["type"] == "function"
    )
    assert offered[1]["tools"] == [WEATHER]  # a row's own tools stay
    assert rows[0]["tools"] == [] and with_config_tools(rows, []) is rows


@pytest.mark.parametrize(("use_lora", "weights"), [(True, "bfloat16"), (False, "float32")])
def test_auto_on_a_bf16_gpu_keeps_float32_weights_for_a_full_fine_tune(monkeypatch, use_lora, weights):
    """AdamW's small updates to bf16 weights round away; LoRA's float32 adapters do not care."""
    import torch

    from app.configs.estimates import training_dtype
    from jobs.training.trainer import device_settings

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    config = config_with(use_lora=use_lora)
    settings = device_settings(config)
    assert (settings["dtype_name"], settings["bf16_autocast"]) == (weights, True)
    assert training_dtype(config, cuda=True) == weights  # the linter's estimate counts the same
