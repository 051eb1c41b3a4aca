"""Starting points: each a complete config that passes the linter for the default base model.

Values are tuned for SmolLM2-135M-Instruct on a CPU worker (float32, no gradient checkpointing:
measured faster for a model this small, see ARCHITECTURE.md) and stay sensible on a GPU.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from app.configs.schema import DEFAULT_BASE_MODEL, default_config
from app.serving.default_model import DEFAULT_MODEL_NAME


@dataclass(frozen=True)
class ConfigTemplate:
    key: str
    title: str
    summary: str
    overrides: dict[str, Any]

    def build(self) -> dict[str, Any]:
        config = default_config()
        config["model"]["name"] = DEFAULT_BASE_MODEL
        for section, values in self.overrides.items():
            if isinstance(values, dict):
                config[section].update(copy.deepcopy(values))
            else:
                config[section] = copy.deepcopy(values)
        return config


TEMPLATES: tuple[ConfigTemplate, ...] = (
    ConfigTemplate(
        "sft_toolbench",
        "SFT ToolBench",
        "Supervised tool calling on ToolBench-style conversations: many APIs, one call per answer.",
        {
            "tokenizer": {"max_length": 1024},
            "training": {
                "num_epochs": 2.0,
                "learning_rate": 2e-4,
                "batch_size": 4,
                "lora_r": 16,
                "lora_alpha": 32,
            },
            "evaluation": {"metrics": ["tool_call_accuracy", "valid_call_rate", "eval_loss"]},
        },
    ),
    ConfigTemplate(
        "sft_pc_building",
        "SFT PC Building",
        "A narrow domain assistant (parts, compatibility, prices) with a handful of tools: "
        "short rows, more epochs.",
        {
            "tokenizer": {"max_length": 512},
            "training": {
                "num_epochs": 3.0,
                "learning_rate": 2e-4,
                "batch_size": 8,
                "lora_r": 8,
                "lora_alpha": 16,
            },
        },
    ),
    ConfigTemplate(
        "dpo_basic",
        "DPO Basic",
        "Preference tuning on (prompt, chosen, rejected) pairs: prefer the valid call over the broken one.",
        {
            "tokenizer": {"max_length": 512},
            "training": {
                "method": "dpo",
                "num_epochs": 1.0,
                "learning_rate": 5e-5,
                "batch_size": 2,
                "gradient_accumulation_steps": 2,
                "lr_scheduler_type": "cosine",
                "dpo_beta": 0.1,
            },
            "evaluation": {"metrics": ["tool_call_accuracy", "valid_call_rate"]},
        },
    ),
    ConfigTemplate(
        "teacher_mode",
        "Teacher Mode",
        "Distillation: a teacher model from the registry writes the answers to the dataset's prompts, "
        "then SFT trains on them (the teacher's step runs as part of the training job). "
        "Pick a larger teacher (a remote model) before starting.",
        {
            "training": {"num_epochs": 2.0, "learning_rate": 2e-4, "batch_size": 4},
            # The registry always has the default model; pick a larger (remote) teacher in the editor.
            "data": {"strategy": "teacher", "teacher_model": DEFAULT_MODEL_NAME},
        },
    ),
    ConfigTemplate(
        "knowledge_dense",
        "Knowledge Dense",
        "SFT for fact-dense data: longer rows, a higher LoRA rank to hold more, "
        "more epochs at a gentler rate.",
        {
            "tokenizer": {"max_length": 2048},
            "training": {
                "num_epochs": 4.0,
                "learning_rate": 1e-4,
                "batch_size": 2,
                "gradient_accumulation_steps": 4,
                "lora_r": 64,
                "lora_alpha": 128,
                "lr_scheduler_type": "cosine",
            },
            "evaluation": {"metrics": ["eval_loss", "exact_match"]},
        },
    ),
    ConfigTemplate(
        "sft_openapi",
        "SFT from an OpenAPI spec",
        "Teach the model one API: Toolsmith generates task → call pairs from an imported spec and offers its "
        "operations as tools. Pick the spec and its generated dataset.",
        {
            "tokenizer": {"max_length": 768},
            "training": {
                "num_epochs": 3.0,
                "learning_rate": 3e-4,
                "batch_size": 8,
                "lora_r": 16,
                "lora_alpha": 32,
            },
            "evaluation": {"metrics": ["tool_call_accuracy", "valid_call_rate"]},
        },
    ),
)
TEMPLATES_BY_KEY = {template.key: template for template in TEMPLATES}
