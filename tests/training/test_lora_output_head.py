"""LoRA on the output head: TRL refuses it (what the linter's error rests on), and a run that names it
stops before any step with the setting to change."""

from __future__ import annotations

import pytest

from app.configs.schema import TrainingConfigSpec
from jobs.training.data import Splits
from tests.training.test_pipeline import sft_rows


def config(targets: list[str]) -> TrainingConfigSpec:
    return TrainingConfigSpec.model_validate(
        {
            "model": {"name": "tiny", "torch_dtype": "float32"},
            "tokenizer": {"max_length": 256},
            "training": {"method": "sft", "max_steps": 2, "batch_size": 4, "lora_target_modules": targets},
            "export": {"quantization_types": []},
        }
    )


def test_trl_refuses_a_lora_adapter_on_the_output_head(tiny_model, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig

    from jobs.training.compact_loss import compact_sft_trainer_class
    from jobs.training.data import tokenize_sft
    from jobs.training.trainer import lora_config

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    examples, _ = tokenize_sft(sft_rows(4), tokenizer, 256)
    with pytest.raises(ValueError, match=r"Applying a PEFT adapter to `lm_head` is not supported"):
        compact_sft_trainer_class()(
            model=AutoModelForCausalLM.from_pretrained(str(tiny_model)),
            args=SFTConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[], max_length=256),
            train_dataset=Dataset.from_list(examples),
            processing_class=tokenizer,
            peft_config=lora_config(config(["q_proj", "lm_head"])),
        )


def test_a_run_naming_the_output_head_stops_before_training_with_the_setting_to_change(tiny_model, tmp_path):
    from jobs.training.trainer import TrainingHooks, TrainingRefused, train

    steps = []
    with pytest.raises(TrainingRefused, match=r"output head \(lm_head\).*training\.lora_target_modules"):
        train(
            tiny_model,
            tmp_path,
            config(["q_proj", "lm_head"]),
            Splits(train=sft_rows(8), eval=[]),
            TrainingHooks(on_log=steps.append),
        )
    assert steps == []
