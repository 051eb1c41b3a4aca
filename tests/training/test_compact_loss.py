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


def test_dpo_scores_only_the_labelled_positions_with_the_same_loss_and_gradients(tiny_model, tmp_path):
    """TRL's DPO head on its compact path (`labelled_positions_only`): fewer rows through the head, same
    loss, same LoRA gradients; a TRL upgrade that moves the switch fails here."""
    import trl.trainer.utils as fused_head
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from app.serving.chat_template import TOOL_CHAT_TEMPLATE
    from jobs.training.compact_loss import labelled_positions_only
    from jobs.training.data import render_dpo
    from tests.training.test_pipeline import dpo_rows

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.chat_template = TOOL_CHAT_TEMPLATE
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    args = DPOConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=2, report_to=[], use_cpu=True, max_length=384
    )
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(render_dpo(dpo_rows(4), tokenizer)),
        processing_class=tokenizer,
        peft_config=LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False),
    )
    inputs = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    projected: list[int] = []
    scored = fused_head._ChunkedLogProbFunction

    class Spy(scored):
        @staticmethod
        def forward(ctx, hidden, *rest):
            projected.append(hidden.shape[0])
            return scored.forward(ctx, hidden, *rest)

    fused_head._ChunkedLogProbFunction = Spy
    try:
        results = []
        for compact in (False, True):
            trainer.model.zero_grad()
            projected.clear()
            if compact:
                with labelled_positions_only():
                    loss = trainer.compute_loss(trainer.model, inputs)
            else:
                loss = trainer.compute_loss(trainer.model, inputs)
            loss.backward()
            results.append((loss.detach(), lora_grads(trainer.model), list(projected)))
    finally:
        fused_head._ChunkedLogProbFunction = scored
    (full_loss, full_grads, full_rows), (loss, grads, rows) = results
    labelled = int((inputs["completion_mask"][:, 1:] != 0).sum())
    assert full_rows == [inputs["input_ids"][:, 1:].numel()] * 2  # policy and reference, every position
    assert rows == [labelled] * 2 and labelled < full_rows[0] / 3
    assert torch.allclose(loss, full_loss, rtol=1e-5, atol=1e-6)
    assert full_grads.keys() == grads.keys() and grads
    for name in grads:
        assert torch.allclose(grads[name], full_grads[name], rtol=1e-4, atol=1e-7), name


@pytest.mark.parametrize("dtype", ["auto", "float32"])
def test_the_compact_sft_loss_computes_in_bf16_when_the_worker_autocasts(tiny_model, tmp_path, dtype):
    """CPU workers with bf16 instructions train under bf16 autocast (`torch_dtype: auto`); the compact
    loss calls the backbone past the forward accelerate wraps, so it must enter autocast itself."""
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import SFTConfig

    from app.configs.schema import TrainingConfigSpec
    from app.serving.chat_template import TOOL_CHAT_TEMPLATE
    from jobs.training.compact_loss import compact_sft_trainer_class
    from jobs.training.data import tokenize_sft
    from jobs.training.hardware import cpu_has_native_bf16
    from jobs.training.trainer import common_args, device_settings
    from tests.training.test_pipeline import sft_rows

    config = TrainingConfigSpec.model_validate({"model": {"name": "tiny", "torch_dtype": dtype}})
    settings = device_settings(config)
    assert settings["bf16_autocast"] == (dtype == "auto" and cpu_has_native_bf16())
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.chat_template = TOOL_CHAT_TEMPLATE
    examples, _ = tokenize_sft(sft_rows(4), tokenizer, 384)
    arguments = common_args(config, tmp_path, settings, has_eval=False) | {"bf16": dtype == "auto"}
    trainer = compact_sft_trainer_class()(
        model=AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32),
        args=SFTConfig(**arguments, max_length=384),
        train_dataset=Dataset.from_list(examples),
        processing_class=tokenizer,
        peft_config=LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"),
    )
    inputs = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    seen = []
    projection = trainer.model.get_base_model().model.layers[0].mlp.down_proj.base_layer
    projection.register_forward_hook(lambda module, args, output: seen.append(output.dtype))
    loss = trainer.compute_loss(trainer.model, inputs)
    assert seen == [torch.bfloat16 if dtype == "auto" else torch.float32]
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_dpo_tokens_count_both_sequences_of_a_pair_each_cut_at_max_length(tiny_model):
    from transformers import AutoTokenizer

    from jobs.training.trainer import dpo_tokens

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    row = {"prompt": "Weather in Oslo? ", "chosen": "It is sunny in Oslo today.", "rejected": "No."}
    chosen = len(tokenizer(row["prompt"] + row["chosen"]).input_ids)
    rejected = len(tokenizer(row["prompt"] + row["rejected"]).input_ids)
    assert chosen > rejected
    assert dpo_tokens([row, row], tokenizer, 512) == 2 * (chosen + rejected)
    assert dpo_tokens([row], tokenizer, rejected) == 2 * rejected  # the longer one is cut


def _tool_tokenizer(tiny_model):
    from transformers import AutoTokenizer

    from app.serving.chat_template import TOOL_CHAT_TEMPLATE

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    tokenizer.chat_template = TOOL_CHAT_TEMPLATE
    return tokenizer


def test_sft_counts_the_answers_the_max_length_cuts_and_trains_preference_rows_on_their_chosen_answer(
    tiny_model,
):
    from jobs.training.data import SftLengths, tokenize_sft
    from tests.training.test_pipeline import dpo_rows, sft_rows

    tokenizer = _tool_tokenizer(tiny_model)
    examples, whole = tokenize_sft(sft_rows(2), tokenizer, 4096)
    assert len(examples) == 2 and (whole.cut, whole.whole) == (0, 2)
    answer_starts = examples[0]["assistant_masks"].index(1)
    cut = tokenize_sft(sft_rows(2), tokenizer, answer_starts + 3)[1]
    assert (cut.cut, cut.whole) == (2, 0) and cut.longest == whole.longest  # the run is refused
    # Two answers, the second cut mid-way: the first still trains whole, so the run goes ahead.
    row = sft_rows(1)[0]
    two = {
        **row,
        "messages": [*row["messages"], {"role": "user", "content": "And in Lima?"}, row["messages"][1]],
    }
    (example,), _ = tokenize_sft([two], tokenizer, 4096)
    mask = example["assistant_masks"]
    second_starts = max(i for i in range(1, len(mask)) if mask[i] and not mask[i - 1])
    assert tokenize_sft([two], tokenizer, second_starts + 3)[1] == SftLengths(len(example["input_ids"]), 1, 1)
    # A preference row in SFT: its prompt and chosen answer (the rejected one is not trained).
    (example,), lengths = tokenize_sft(dpo_rows(1), tokenizer, 4096)
    text = tokenizer.decode(
        [t for t, m in zip(example["input_ids"], example["assistant_masks"], strict=True) if m]
    )
    assert '"city"' in text and '"town"' not in text and lengths.cut == 0


def test_dpo_pairs_without_signal_are_refused_or_counted(tiny_model, caplog):
    from jobs.training.data import render_dpo
    from jobs.training.trainer import TrainingRefused, dpo_pairs, refuse_pairs_without_signal
    from tests.training.test_pipeline import dpo_rows

    tokenizer = _tool_tokenizer(tiny_model)
    rows = render_dpo(dpo_rows(2), tokenizer)
    prompt = len(tokenizer(rows[0]["prompt"]).input_ids)
    whole = dpo_pairs(rows, tokenizer, 4096)
    assert (whole.identical, whole.same_when_cut) == (0, 0)
    refuse_pairs_without_signal(whole, 2, 4096)  # every pair teaches: nothing to say
    cut = dpo_pairs(rows, tokenizer, prompt + 2)  # the answers part a dozen tokens in
    assert cut.same_when_cut == 2
    with pytest.raises(TrainingRefused, match=r"No preference pair's answers differ within the max length"):
        refuse_pairs_without_signal(cut, 2, prompt + 2)
    same = [{**row, "rejected": row["chosen"]} for row in rows]
    with pytest.raises(TrainingRefused, match="the same chosen and rejected answer"):
        refuse_pairs_without_signal(dpo_pairs(same, tokenizer, 4096), 2, 4096)
    mixed = dpo_pairs([rows[0], same[1]], tokenizer, 4096)
    with caplog.at_level("WARNING", logger="jobs.training.trainer"):
        refuse_pairs_without_signal(mixed, 2, 4096)
    assert "1 of 2 preference pairs teach nothing: 1 have the same chosen and rejected answer" in caplog.text


def test_dataset_row_lengths_match_what_training_tokenises(tiny_model):
    """The stats the linter's max-length warning reads count the chat template too (its tool text and
    headers were once left out: a 213-token row counted as 98)."""
    from app.datasets.stats import row_lengths
    from jobs.training.data import render_dpo, tokenize_sft
    from tests.training.test_pipeline import dpo_rows, sft_rows

    tokenizer = _tool_tokenizer(tiny_model)
    trained = tokenize_sft(sft_rows(1), tokenizer, 4096)[1].longest
    assert abs(row_lengths(sft_rows(1), "sft")[0] - trained) <= 0.02 * trained
    (pair,) = render_dpo(dpo_rows(1), tokenizer)
    longer = max(len(tokenizer(pair["prompt"] + pair[side]).input_ids) for side in ("chosen", "rejected"))
    assert abs(row_lengths(dpo_rows(1), "dpo")[0] - longer) <= 0.02 * longer
