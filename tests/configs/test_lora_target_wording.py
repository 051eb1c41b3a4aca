"""What the linter says of LoRA on the output head and the input embeddings is what TRL and peft do with
them (tests/training/test_lora_output_head.py checks TRL's side on a real tiny Llama)."""

from __future__ import annotations

import dataclasses

import pytest

from app.configs.estimates import facts_from_gguf
from app.configs.linter import LintContext, lint
from app.configs.templates import TEMPLATES_BY_KEY
from app.serving.default_model import default_gguf_path


def targeting(*modules: str) -> dict:
    config = TEMPLATES_BY_KEY["sft_toolbench"].build()
    config["training"]["lora_target_modules"] = list(modules)
    return config


@pytest.fixture(scope="module")
def smollm2() -> LintContext:
    """The default base model's own architecture: SmolLM2 ties its head to its embeddings."""
    return LintContext(model_facts=facts_from_gguf(str(default_gguf_path())))


def target_findings(report):
    return [f for f in report.findings if f.path == "training.lora_target_modules"]


@pytest.mark.parametrize(
    "modules", [("lm_head",), ("q_proj", "lm_head"), ("q_proj", "v_proj", "model.lm_head")]
)
def test_lora_on_the_output_head_is_an_error_that_says_to_remove_it(modules, smollm2):
    report = lint(targeting(*modules), smollm2)
    (finding,) = target_findings(report)
    assert (finding.severity, finding.rule) == ("error", "lora_target_lm_head") and not report.ok
    assert "TRL refuses a LoRA adapter on lm_head" in finding.message
    assert "Remove lm_head" in finding.message and "finds nothing to adapt" not in finding.message


def test_the_default_model_is_known_to_tie_its_head_to_its_embeddings(smollm2):
    assert smollm2.model_facts.tied_embeddings is True


def test_lora_on_tied_embeddings_trains_but_warns_that_the_export_is_not_the_trained_model(smollm2):
    report = lint(targeting("embed_tokens"), smollm2)
    (finding,) = target_findings(report)
    assert (finding.severity, finding.rule) == ("warning", "lora_embeddings_tied") and report.ok
    assert finding.message.startswith("The base model ties its output head to its input embeddings")
    assert "the exported model is not the one trained" in finding.message
    assert "finds nothing to adapt" not in finding.message
    (mixed,) = target_findings(lint(targeting("q_proj", "embed_tokens"), smollm2))
    assert mixed.rule == "lora_embeddings_tied"


def test_lora_on_embeddings_is_fine_when_the_head_has_its_own_weights(smollm2):
    untied = LintContext(model_facts=dataclasses.replace(smollm2.model_facts, tied_embeddings=False))
    assert target_findings(lint(targeting("embed_tokens"), untied)) == []
    # An unknown model: the warning says when it applies.
    (unknown,) = target_findings(lint(targeting("embed_tokens"), LintContext()))
    assert unknown.message.startswith("If the base model ties (SmolLM2 does)")


def test_names_that_are_no_llama_module_still_get_the_unknown_warning(smollm2):
    (finding,) = target_findings(lint(targeting("c_attn"), smollm2))
    assert (finding.severity, finding.rule) == ("warning", "lora_targets_unknown")
    assert target_findings(lint(targeting("q_proj", "v_proj"), smollm2)) == []
