"""Memory and time estimates for a training config, shown beside the editor.

Memory is the sum of what a training process holds at its peak: the framework itself (Python, torch,
transformers, TRL), the base weights, the trainable parameters with their gradients and AdamW state,
the activations kept for the backward pass at the chosen batch and row length, and the logits over
the vocabulary (for a small model with a big vocabulary, like SmolLM2's 49k, the largest part).
The per-token constants were fitted to peak RSS of real LoRA runs of the 135M model on CPU
(`bench/memory_estimate.py`; comparison in docs/benchmarks.md). DPO runs chosen and rejected as one batch
of twice the rows, scores them with TRL's fused LM head (tiles of the logits, never all of them) and, for
a full fine-tune, holds a second copy of the weights as the reference model; measured the same way.

Time comes only from measured throughput (tokens per second of earlier runs on the same model):
without one the editor says so instead of guessing.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.configs.schema import TrainingConfigSpec

# Fitted to peak RSS (VmHWM) of LoRA and full runs of the 135M model on CPU (float32, SDPA attention,
# TRL SFTTrainer), by varying batch, length and the number of layers: bench/memory_estimate.py.
FRAMEWORK_BYTES = 750 * 2**20  # Python + torch + transformers + TRL after import, plus allocator slack
ACTIVATION_HIDDEN_FACTOR = 22  # values of size `hidden` kept per token per layer
ACTIVATION_MLP_FACTOR = 3  # values of size `intermediate` kept per token per layer
LOGIT_COPIES = 5  # float32 logits, log-softmax, its gradient, TRL's entropy / token accuracy
# Not capped at TRL's 4,096-position head tile: plain SFTTrainer scores that many at a time (one 8,192-token
# row peaked at 9,863 MiB, 0.76x of this), but the app's compact loss (jobs/training/compact_loss.py)
# projects every labelled position at once, so the logits grow with the answer tokens: count them all.
CHECKPOINTING_KEEP = 0.24  # share of activations kept with gradient checkpointing (measured)
ADAMW_BYTES_PER_TRAINABLE = 16  # fp32 weight + gradient + two moments
ADAMW_MOMENT_BYTES = 8  # at the peak (end of the forward pass) gradients are already freed

# DPO (TRL 1.16 DPOTrainer), measured the same way on DPO runs: bench/memory_estimate.py `-dpo` settings.
# DPOConfig's disable_dropout zeroes LoRA's dropout, so the copies of its inputs (and masks) that the SFT
# factors include are not kept: 22h + 3i − 1.25 × (6h + i) values per token per layer.
DPO_ACTIVATION_HIDDEN_FACTOR = 14.5
DPO_ACTIVATION_MLP_FACTOR = 1.75
# The fused head projects at most 4,096 positions × 32,768 vocabulary entries at a time
# (trl.kernels.chunked_logprob); its CPU backward holds about 8 float32 copies of that tile at its peak.
DPO_HEAD_TILE_TOKENS = 4096
DPO_HEAD_TILE_VOCAB = 32768
DPO_HEAD_TILE_COPIES = 8


@dataclass(frozen=True)
class ModelFacts:
    """The architecture numbers the estimates need (a Llama-style decoder)."""

    parameters: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    context_length: int | None
    # The output head shares the input embeddings' weights (SmolLM2 does); None when unknown.
    tied_embeddings: bool | None = None


@dataclass(frozen=True)
class MemoryEstimate:
    framework_bytes: int
    weights_bytes: int
    trainable_parameters: int
    optimizer_bytes: int
    activations_bytes: int
    logits_bytes: int
    tokens_per_row: int
    reference_bytes: int = 0  # DPO with a full fine-tune: the frozen reference model's weights

    @property
    def total_bytes(self) -> int:
        return (
            self.framework_bytes
            + self.weights_bytes
            + self.reference_bytes
            + self.optimizer_bytes
            + self.activations_bytes
            + self.logits_bytes
        )

    @property
    def total_gib(self) -> float:
        return self.total_bytes / 2**30

    def parts(self) -> list[tuple[str, int]]:
        reference = [("Reference model (DPO)", self.reference_bytes)] if self.reference_bytes else []
        return [
            ("Framework (Python, torch, TRL)", self.framework_bytes),
            ("Base weights", self.weights_bytes),
            *reference,
            ("Trainable parameters, gradients, AdamW state", self.optimizer_bytes),
            ("Activations", self.activations_bytes),
            ("Logits over the vocabulary", self.logits_bytes),
        ]


LLAMA_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def lora_parameters(facts: ModelFacts, r: int, targets: list[str] | str) -> int:
    """Trainable LoRA parameters: r × (in + out) for each adapted projection of each layer."""
    head_dim = facts.hidden // max(facts.heads, 1)
    kv = facts.kv_heads * head_dim
    shapes = {
        "q_proj": (facts.hidden, facts.hidden),
        "k_proj": (facts.hidden, kv),
        "v_proj": (facts.hidden, kv),
        "o_proj": (facts.hidden, facts.hidden),
        "gate_proj": (facts.hidden, facts.intermediate),
        "up_proj": (facts.hidden, facts.intermediate),
        "down_proj": (facts.intermediate, facts.hidden),
    }
    chosen = shapes if targets == "all-linear" else {k: v for k, v in shapes.items() if k in targets}
    return facts.layers * sum(r * (n_in + n_out) for n_in, n_out in chosen.values())


def training_dtype(config: TrainingConfigSpec, cuda: bool) -> str:
    """The dtype the weights train in on a worker with (or without) CUDA, as `jobs.training.trainer.
    device_settings` picks it: float16 without CUDA becomes float32, bfloat16 stays; a config pinned to
    the CPU never uses CUDA; auto is float32 for a full fine-tune (bf16 autocast computes on a GPU)."""
    cuda = cuda and config.model.device != "cpu"
    dtype = config.model.torch_dtype
    if dtype == "auto":
        return "bfloat16" if cuda and config.training.use_lora else "float32"
    return "float32" if dtype == "float16" and not cuda else dtype


def estimate_memory(
    config: TrainingConfigSpec, facts: ModelFacts, tokens_per_row: int | None = None, cuda: bool = False
) -> MemoryEstimate:
    """Peak memory of a run of `config` on `facts`'s model, on a worker with CUDA or without (the default);
    rows padded to `tokens_per_row` (default: the config's max length, the worst case)."""
    t = config.training
    dtype = training_dtype(config, cuda)
    value_bytes = 4 if dtype == "float32" else 2
    weight_bytes = facts.parameters * value_bytes
    if t.use_qlora:  # 4-bit linear layers (about half a byte per weight), embeddings stay 16-bit
        embeddings = facts.vocab * facts.hidden
        weight_bytes = int((facts.parameters - embeddings) * 0.55) + embeddings * 2
    if t.use_lora and t.lora_r:
        trainable = lora_parameters(facts, t.lora_r, t.lora_target_modules)
        optimizer = trainable * ADAMW_BYTES_PER_TRAINABLE
    else:
        trainable = facts.parameters
        optimizer = trainable * ADAMW_MOMENT_BYTES  # gradients are counted below, where they can peak
    tokens = max(1, min(tokens_per_row or config.tokenizer.max_length, config.tokenizer.max_length))
    batch_tokens = max(1, t.batch_size) * tokens
    per_token_layer = ACTIVATION_HIDDEN_FACTOR * facts.hidden + ACTIVATION_MLP_FACTOR * facts.intermediate
    dpo = t.method == "dpo"
    if dpo:
        batch_tokens *= 2  # chosen and rejected rows go through the model as one batch
        per_token_layer = (
            DPO_ACTIVATION_HIDDEN_FACTOR * facts.hidden + DPO_ACTIVATION_MLP_FACTOR * facts.intermediate
        )
    activations = int(batch_tokens * facts.layers * per_token_layer * value_bytes)
    if t.gradient_checkpointing:
        activations = int(activations * CHECKPOINTING_KEEP)
    logits = batch_tokens * facts.vocab * 4 * LOGIT_COPIES  # the loss is computed in float32
    reference = 0
    if dpo:
        # One tile of the fused head, worst case every position scored (answers filling the rows).
        tile = min(batch_tokens, DPO_HEAD_TILE_TOKENS) * min(facts.vocab, DPO_HEAD_TILE_VOCAB) * 4
        logits = tile * DPO_HEAD_TILE_COPIES
        if not (t.use_lora and t.lora_r):
            reference = weight_bytes  # TRL loads the base again; LoRA disables the adapter instead
    if not (t.use_lora and t.lora_r):
        # Full fine-tuning: the peak is the larger of the forward pass (activations + logits) and the
        # backward's end, where all gradients exist at once.
        optimizer += max(0, trainable * value_bytes - (activations + logits))
    return MemoryEstimate(
        framework_bytes=FRAMEWORK_BYTES,
        weights_bytes=weight_bytes,
        trainable_parameters=trainable,
        optimizer_bytes=optimizer,
        activations_bytes=activations,
        logits_bytes=logits,
        tokens_per_row=tokens,
        reference_bytes=reference,
    )


def estimate_seconds(total_tokens: int, tokens_per_second: float | None) -> float | None:
    """Training time from a measured throughput; None when the app has none yet."""
    if not tokens_per_second or tokens_per_second <= 0:
        return None
    return total_tokens / tokens_per_second


@dataclass(frozen=True)
class SplitSizes:
    train: int
    eval: int


def split_sizes(
    unmarked: int,
    marked_train: int,
    marked_eval: int,
    train_split: float,
    eval_split: float,
    max_samples: int | None = None,
) -> SplitSizes:
    """The rows `jobs.training.data.split_rows` trains on and holds out, from counts: rows marked `split`
    keep their side, the shares cut the unmarked rows (the eval share first, never taking the last one),
    and max_samples cuts each side after the split. Exact when each unmarked row asks its own request and
    no marked row asks it (a test holds the two equal); rows asking one request move together, which can
    move the cut by that request's rows."""
    n_train = int(round(unmarked * train_split))
    n_eval = min(unmarked - n_train, int(round(unmarked * eval_split)))
    taken_eval = max(0, min(n_eval, unmarked - 1))
    taken_train = max(0, min(n_train, unmarked - taken_eval))
    train, evaluation = marked_train + taken_train, marked_eval + taken_eval
    if max_samples:
        train = min(train, max_samples)
        evaluation = min(evaluation, max(1, max_samples // 10))
    return SplitSizes(train, evaluation)


def planned_steps(config: TrainingConfigSpec, train_rows: int) -> int:
    """Optimizer steps of a run over `train_rows` training rows (after the split and max_samples)."""
    t = config.training
    per_epoch = max(1, math.ceil(max(1, train_rows) / max(1, t.batch_size * t.gradient_accumulation_steps)))
    return t.max_steps if t.max_steps and t.max_steps > 0 else max(1, math.ceil(per_epoch * t.num_epochs))


# --- where the architecture numbers come from ------------------------------------------------------


@functools.lru_cache(maxsize=8)
def facts_from_gguf(path: str) -> ModelFacts:
    """Read from a GGUF header (the default base model ships as one); GGUFHeaderError when it lacks one of
    the numbers."""
    from app.serving.gguf_header import GGUFArray, GGUFHeaderError, read_gguf_header

    header = read_gguf_header(path)
    metadata = header.metadata
    arch = metadata.get("general.architecture")

    def number(key: str) -> int | None:
        found = metadata.get(f"{arch}.{key}")
        return int(found) if isinstance(found, int | float) and not isinstance(found, bool) else None

    def required(key: str) -> int:
        found = number(key)
        if found is None:
            raise GGUFHeaderError(f"the header has no number for {arch}.{key}")
        return found

    tokens = metadata.get("tokenizer.ggml.tokens")
    heads = required("attention.head_count")
    return ModelFacts(
        parameters=header.parameter_count,
        hidden=required("embedding_length"),
        layers=required("block_count"),
        heads=heads,
        kv_heads=number("attention.head_count_kv") or heads,
        intermediate=required("feed_forward_length"),
        vocab=tokens.length if isinstance(tokens, GGUFArray) else 0,
        context_length=number("context_length"),
        # A tied model's GGUF has no head of its own: llama.cpp reads the token embeddings.
        tied_embeddings="output.weight" not in header.tensor_shapes,
    )


def facts_from_hf_config(config_path: Path) -> ModelFacts | None:
    """Read a local Hugging Face folder's config.json (plain JSON: nothing of the model is run)."""
    try:
        raw = json.loads(config_path.read_text())
        hidden = int(raw["hidden_size"])
        layers = int(raw["num_hidden_layers"])
        heads = int(raw["num_attention_heads"])
        kv_heads = int(raw.get("num_key_value_heads") or heads)
        intermediate = int(raw["intermediate_size"])
        vocab = int(raw["vocab_size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    head_dim = hidden // max(heads, 1)
    per_layer = (
        2 * hidden * hidden + 2 * hidden * kv_heads * head_dim + 3 * hidden * intermediate + 2 * hidden
    )
    embeddings = vocab * hidden * (1 if raw.get("tie_word_embeddings", True) else 2)
    context = raw.get("max_position_embeddings")
    tied = raw.get("tie_word_embeddings")
    return ModelFacts(
        parameters=layers * per_layer + embeddings + hidden,
        hidden=hidden,
        layers=layers,
        heads=heads,
        kv_heads=kv_heads,
        intermediate=intermediate,
        vocab=vocab,
        context_length=int(context) if isinstance(context, int) else None,
        tied_embeddings=tied if isinstance(tied, bool) else None,
    )
