"""The memory estimate assumes fused attention; a model that computes it eagerly is named in the log,
with the memory its length² attention weights add."""

from __future__ import annotations

import pytest
from transformers import AutoModelForCausalLM, LlamaConfig

from app.configs.schema import TrainingConfigSpec
from app.configs.templates import TEMPLATES_BY_KEY
from jobs.training.trainer import eager_attention_note

TINY = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 128,
}


def config(checkpointing: bool) -> TrainingConfigSpec:
    raw = TEMPLATES_BY_KEY["sft_toolbench"].build()
    raw["tokenizer"]["max_length"] = 4096
    raw["training"].update({"batch_size": 2, "gradient_checkpointing": checkpointing})
    return TrainingConfigSpec.model_validate(raw)


@pytest.mark.parametrize("checkpointing, gib", [(False, 1.5), (True, 0.5)])
def test_eager_attention_is_named_with_what_it_adds(checkpointing, gib):
    eager = AutoModelForCausalLM.from_config(LlamaConfig(**TINY), attn_implementation="eager")
    note = eager_attention_note(eager, config(checkpointing))
    # 3 layers (1 with checkpointing) × batch 2 × 4 heads × 4096² × 4 bytes.
    assert note is not None and f"at least {gib:.1f} GiB more for 2 rows of 4096 tokens" in note


def test_fused_attention_says_nothing():
    fused = AutoModelForCausalLM.from_config(LlamaConfig(**TINY), attn_implementation="sdpa")
    assert eager_attention_note(fused, config(False)) is None
