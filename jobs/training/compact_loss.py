"""SFT loss scored only where a label is set: the LM head runs on the assistant tokens, not every position.

TRL 1.16's fused LM head scores only the labelled positions on Triton devices; everywhere else (our CPU
workers) it projects *every* position through the 49k-word head in tiles and masks afterwards. For
tool-calling rows the labelled part (the call, ~40 tokens) is a tenth of the row (tool schemas fill the
prompt), so on this CPU that head took ~40% of each step (torch.profiler, bench/training_throughput.py).
Here the backbone runs as usual, the hidden states of the labelled positions are picked out, and only
those go through the head: the same loss (sum of token losses over `num_items_in_batch`, as TRL), a
fraction of the work.

Models whose head does more than a plain projection (soft-capped or scaled logits, MoE auxiliary
losses) keep TRL's path; `supports_compact_loss` decides.

DPO keeps TRL's own fused head (it also yields the entropy and accuracy metrics); `labelled_positions_only`
makes that head take its compact path, the one it takes on Triton devices, on CPU too. TRL scores every
position off Triton only so that XLA-like devices see fixed tile shapes; in eager CPU code the compact
path is the same tiles on fewer rows (tests/training/test_compact_loss.py checks loss and gradients).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Config attributes that change the logits after the projection, or add a loss term (TRL reads the same).
_HEAD_MODIFIERS = (
    "final_logit_softcapping",
    "logit_scale",
    "output_multiplier",
    "lm_head_multiplier",
    "logits_scaling",
    "output_router_logits",
)


def supports_compact_loss(model: Any) -> bool:
    causal_lm = causal_lm_of(model)
    config = causal_lm.config.get_text_config()
    if any(getattr(config, name, None) not in (None, False) for name in _HEAD_MODIFIERS):
        return False
    return hasattr(causal_lm, "base_model") and causal_lm.get_output_embeddings() is not None


def causal_lm_of(model: Any) -> Any:
    """The transformers model under PEFT's wrapper (LoRA layers live inside it)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def compact_causal_lm_loss(model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None):
    """(loss, labelled token count, correct top-1 count) for a batch with `labels` (-100 = no loss)."""
    import torch
    import torch.nn.functional as F

    causal_lm = causal_lm_of(model)
    labels = inputs["labels"]
    forward = {k: v for k, v in inputs.items() if k not in ("labels", "use_cache")}
    hidden = causal_lm.base_model(**forward, use_cache=False).last_hidden_state
    targets = labels[:, 1:]
    mask = targets != -100
    picked = hidden[:, :-1][mask]  # (labelled tokens, hidden): the only rows the head needs
    logits = causal_lm.get_output_embeddings()(picked).float()
    wanted = targets[mask]
    token_loss_sum = F.cross_entropy(logits, wanted, reduction="sum")
    count = mask.sum()
    denominator = count.clamp(min=1) if num_items_in_batch is None else num_items_in_batch
    loss = token_loss_sum / torch.as_tensor(denominator, device=token_loss_sum.device)
    with torch.no_grad():
        correct = (logits.argmax(dim=-1) == wanted).sum()
    return loss, count, correct


def compact_sft_trainer_class():
    """SFTTrainer with the compact loss (built on demand: trl is a heavy import)."""
    from trl import SFTTrainer

    class CompactLossSFTTrainer(SFTTrainer):
        def _get_train_sampler(self, train_dataset=None):
            # Not a loss matter, but this is the app's SFT trainer: see jobs/training/sampling.py.
            from jobs.training.sampling import epoch_seeded

            return epoch_seeded(super()._get_train_sampler(train_dataset), self.args.seed)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if return_outputs or "labels" not in inputs or not supports_compact_loss(model):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            # The backbone is called directly, past the forward that accelerate wraps in autocast.
            with self.accelerator.autocast():
                loss, count, correct = compact_causal_lm_loss(model, inputs, num_items_in_batch)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes  # like Trainer.compute_loss under DDP
            mode = "train" if model.training else "eval"
            labelled = int(count)
            self._metrics[mode]["mean_token_accuracy"].append(int(correct) / labelled if labelled else 0.0)
            if mode == "train" and "attention_mask" in inputs:
                self._total_train_tokens += int(inputs["attention_mask"].sum())
                self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
            return loss

    return CompactLossSFTTrainer


@contextmanager
def labelled_positions_only() -> Iterator[None]:
    """While active, TRL's fused LM head (`add_fused_lm_head`) projects only the labelled positions."""
    import trl.trainer.utils as fused_head

    decide = fused_head._use_triton  # trl 1.16: the fused forward's "score only the valid positions" test
    fused_head._use_triton = lambda device: True
    try:
        yield
    finally:
        fused_head._use_triton = decide
