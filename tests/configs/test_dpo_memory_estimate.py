"""The memory estimate for DPO configs: twice the rows, TRL's fused-head tiles, a reference model for
a full fine-tune; SFT estimates as they were (numbers measured in docs/benchmarks.md)."""

from __future__ import annotations

import pytest

from app.configs.estimates import (
    DPO_HEAD_TILE_COPIES,
    DPO_HEAD_TILE_TOKENS,
    DPO_HEAD_TILE_VOCAB,
    estimate_memory,
    facts_from_gguf,
)
from app.configs.schema import TrainingConfigSpec
from app.serving.default_model import default_gguf_path

# SmolLM2-135M, the model the measurements in docs/benchmarks.md were taken on.
SMOLLM2_135M = facts_from_gguf(str(default_gguf_path()))
MIB = 2**20


def config(
    method: str = "sft",
    batch: int = 4,
    length: int = 512,
    lora: bool = True,
    dtype: str = "float32",
    device: str = "cpu",
    **training,
):
    return TrainingConfigSpec.model_validate(
        {
            "model": {"torch_dtype": dtype, "device": device},
            "tokenizer": {"max_length": length},
            "training": {
                "method": method,
                "batch_size": batch,
                "use_lora": lora,
                "lora_r": 16,
                "lora_alpha": 32,
                "lora_target_modules": "all-linear",
                **training,
            },
        }
    )


@pytest.mark.parametrize(
    ("batch", "length", "lora", "mib"),
    # The SFT estimates recorded in docs/benchmarks.md before DPO had its own terms.
    [
        (2, 128, True, 2084),
        (4, 256, True, 4323),
        (4, 512, True, 7308),
        (8, 512, True, 13278),
        (2, 128, False, 3036),
    ],
)
def test_sft_estimates_are_unchanged(batch, length, lora, mib):
    estimate = estimate_memory(config("sft", batch, length, lora), SMOLLM2_135M)
    assert round(estimate.total_bytes / MIB) == mib
    assert estimate.reference_bytes == 0
    assert "Reference model (DPO)" not in dict(estimate.parts())


def test_sft_parts_are_unchanged():
    estimate = estimate_memory(config("sft", 4, 512), SMOLLM2_135M)
    assert [label for label, _ in estimate.parts()] == [
        "Framework (Python, torch, TRL)",
        "Base weights",
        "Trainable parameters, gradients, AdamW state",
        "Activations",
        "Logits over the vocabulary",
    ]


@pytest.mark.parametrize("lora", [True, False])
# Up to 4,096 tokens per batch: past it both fused heads stop growing, and DPO's tile is the smaller.
@pytest.mark.parametrize(("batch", "length"), [(1, 64), (2, 128), (4, 512), (8, 512), (2, 2048)])
def test_dpo_costs_more_than_sft_for_the_same_config(lora, batch, length):
    sft = estimate_memory(config("sft", batch, length, lora), SMOLLM2_135M)
    dpo = estimate_memory(config("dpo", batch, length, lora), SMOLLM2_135M)
    assert dpo.total_bytes > sft.total_bytes
    assert dpo.activations_bytes > sft.activations_bytes  # twice the rows, without LoRA dropout's copies
    assert dpo.weights_bytes == sft.weights_bytes
    assert dpo.tokens_per_row == sft.tokens_per_row == length


def test_full_fine_tune_dpo_holds_a_second_copy_of_the_weights():
    full = estimate_memory(config("dpo", 2, 128, lora=False), SMOLLM2_135M)
    assert full.reference_bytes == full.weights_bytes == SMOLLM2_135M.parameters * 4
    assert ("Reference model (DPO)", full.weights_bytes) in full.parts()
    assert full.total_bytes == sum(size for _, size in full.parts())
    lora = estimate_memory(config("dpo", 2, 128, lora=True), SMOLLM2_135M)
    assert lora.reference_bytes == 0  # the reference is the same model with the adapter disabled


def test_dpo_reference_follows_the_weights_dtype():
    # On a CUDA worker (a config pinned to the CPU never uses CUDA, so these say device auto).
    pinned = config("dpo", 2, 128, lora=False, dtype="bfloat16", device="auto")
    bf16 = estimate_memory(pinned, SMOLLM2_135M, cuda=True)
    assert bf16.reference_bytes == bf16.weights_bytes == SMOLLM2_135M.parameters * 2
    # auto keeps a full fine-tune's weights in float32 (bf16 autocast computes): the reference too.
    auto = estimate_memory(
        config("dpo", 2, 128, lora=False, dtype="auto", device="auto"), SMOLLM2_135M, cuda=True
    )
    assert auto.reference_bytes == auto.weights_bytes == SMOLLM2_135M.parameters * 4


def test_dpo_head_is_one_capped_tile():
    tile = DPO_HEAD_TILE_VOCAB * 4 * DPO_HEAD_TILE_COPIES
    small = estimate_memory(config("dpo", 2, 128), SMOLLM2_135M)
    assert small.logits_bytes == 2 * 2 * 128 * tile
    # Past 4,096 scored positions the tile stops growing; SFT's logits keep growing with the batch.
    big = estimate_memory(config("dpo", 8, 2048), SMOLLM2_135M)
    bigger = estimate_memory(config("dpo", 16, 2048), SMOLLM2_135M)
    assert big.logits_bytes == bigger.logits_bytes == DPO_HEAD_TILE_TOKENS * tile
    assert bigger.activations_bytes == 2 * big.activations_bytes


def test_dpo_checkpointing_keeps_a_share_of_the_activations():
    plain = estimate_memory(config("dpo", 4, 512), SMOLLM2_135M)
    checkpointed = estimate_memory(config("dpo", 4, 512, gradient_checkpointing=True), SMOLLM2_135M)
    assert checkpointed.activations_bytes < plain.activations_bytes / 3
    assert checkpointed.logits_bytes == plain.logits_bytes


@pytest.mark.parametrize(
    ("batch", "length", "lora", "checkpointing", "measured_mib"),
    # Peak RSS of real DPO runs (bench/memory_estimate.py, docs/benchmarks.md).
    [
        (2, 128, True, False, 2366),
        (4, 256, True, False, 5516),
        (4, 512, True, False, 9478),
        (4, 512, True, True, 6234),
        (2, 128, False, False, 3959),
    ],
)
def test_dpo_estimate_is_within_30_percent_of_the_measured_peaks(
    batch, length, lora, checkpointing, measured_mib
):
    dpo = config("dpo", batch, length, lora, gradient_checkpointing=checkpointing)
    estimate = estimate_memory(dpo, SMOLLM2_135M)
    assert 0.7 <= estimate.total_bytes / MIB / measured_mib <= 1.3


def test_sft_logits_grow_with_every_position_past_trls_head_tile():
    """The app's compact loss projects every labelled position at once (no 4,096-position tile, as plain
    TRL has): a batch of 8,192 answer tokens holds twice the logits of one of 4,096."""
    long = estimate_memory(config("sft", 1, 8192), SMOLLM2_135M)
    tile = estimate_memory(config("sft", 1, 4096), SMOLLM2_135M)
    assert long.logits_bytes == 2 * tile.logits_bytes
