"""The compact SFT loss equals the full-logits loss (value and LoRA gradients) on a tiny Llama."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from jobs.training.compact_loss import compact_causal_lm_loss, supports_compact_loss


@pytest.fixture
def lora_model(tiny_model):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    return get_peft_model(model, config)


def batch():
    torch.manual_seed(1)
    ids = torch.randint(10, 2000, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0  # right padding
    mask[2, 5:] = 0
    labels = torch.full_like(ids, -100)
    labels[0, 6:] = ids[0, 6:]  # "assistant" tokens at the end of each row
    labels[1, 4:9] = ids[1, 4:9]
    labels[2, 3:5] = ids[2, 3:5]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def lora_grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}


def test_same_loss_and_gradients_as_the_full_logits(lora_model):
    inputs = batch()
    assert supports_compact_loss(lora_model)
    full = lora_model(**inputs).loss  # transformers: mean over labelled tokens, on every position's logits
    full.backward()
    expected = lora_grads(lora_model)
    lora_model.zero_grad()
    compact, count, correct = compact_causal_lm_loss(lora_model, inputs)
    compact.backward()
    got = lora_grads(lora_model)
    assert int(count) == int((inputs["labels"][:, 1:] != -100).sum()) and 0 <= int(correct) <= int(count)
    assert torch.allclose(compact, full, rtol=1e-5, atol=1e-6)
    assert expected.keys() == got.keys() and expected
    for name in expected:
        assert torch.allclose(got[name], expected[name], rtol=1e-4, atol=1e-6), name


def test_num_items_in_batch_is_the_denominator(lora_model):
    inputs = batch()
    mean, count, _ = compact_causal_lm_loss(lora_model, inputs)
    summed, _, _ = compact_causal_lm_loss(lora_model, inputs, num_items_in_batch=1)
    assert torch.allclose(summed, mean * count, rtol=1e-5)


def test_a_soft_capped_head_keeps_trls_path(lora_model):
    lora_model.get_base_model().config.final_logit_softcapping = 30.0
    assert not supports_compact_loss(lora_model)
