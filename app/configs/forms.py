"""The sectioned config editor, built from one table of fields, and its conversion to config JSON.

Numbers arrive as text and are converted here, not by WTForms, so a field that is not a number is
reported like every other problem: at its config path (`training.batch_size`), next to the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, get_args

from flask_wtf.file import FileField
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from app.configs.linter import Finding
from app.configs.schema import (
    Device,
    Dtype,
    Method,
    Metric,
    QuantType,
    Scheduler,
    Strategy,
    TrainingConfigSpec,
)
from app.form_base import Form
from app.form_fields import CheckboxesField
from app.json_input import loads as loads_json


@dataclass(frozen=True)
class FieldSpec:
    section: str  # "" for top-level keys (seed)
    key: str
    label: str
    kind: str  # text | int | optint | float | bool | choice | optchoice | multi | modules | json | longtext
    choices: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        return f"{self.section}.{self.key}" if self.section else self.key

    @property
    def form_name(self) -> str:
        return self.path.replace(".", "__")


def _choices(literal: Any) -> tuple[str, ...]:
    return tuple(get_args(literal))


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("model", "name", "Base model", "text"),
    FieldSpec("model", "torch_dtype", "Weights dtype", "choice", _choices(Dtype)),
    FieldSpec("model", "device", "Device", "choice", _choices(Device)),
    FieldSpec("model", "trust_remote_code", "Trust remote code", "bool"),
    FieldSpec("tokenizer", "name", "Tokenizer", "opttext"),
    FieldSpec("tokenizer", "padding_side", "Padding side", "choice", ("right", "left")),
    FieldSpec("tokenizer", "max_length", "Max length (tokens)", "int"),
    FieldSpec("tokenizer", "chat_template", "Chat template (Jinja)", "longtext"),
    FieldSpec("training", "method", "Method", "choice", _choices(Method)),
    FieldSpec("training", "num_epochs", "Epochs", "float"),
    FieldSpec("training", "max_steps", "Max steps", "optint"),
    FieldSpec("training", "learning_rate", "Learning rate", "float"),
    FieldSpec("training", "lr_scheduler_type", "Scheduler", "choice", _choices(Scheduler)),
    FieldSpec("training", "warmup_ratio", "Warmup ratio", "float"),
    FieldSpec("training", "batch_size", "Batch size", "int"),
    FieldSpec("training", "gradient_accumulation_steps", "Gradient accumulation", "int"),
    FieldSpec("training", "use_lora", "LoRA", "bool"),
    FieldSpec("training", "lora_r", "LoRA rank r", "optint"),
    FieldSpec("training", "lora_alpha", "LoRA alpha", "int"),
    FieldSpec("training", "lora_dropout", "LoRA dropout", "float"),
    FieldSpec("training", "lora_target_modules", "LoRA target modules", "modules"),
    FieldSpec("training", "use_qlora", "QLoRA (4-bit base, CUDA only)", "bool"),
    FieldSpec("training", "packing", "Packing", "bool"),
    FieldSpec("training", "gradient_checkpointing", "Gradient checkpointing", "bool"),
    FieldSpec("training", "dpo_beta", "DPO beta", "float"),
    FieldSpec("training", "early_stopping_patience", "Early stopping patience", "optint"),
    FieldSpec("data", "dataset", "Dataset", "optchoice"),
    FieldSpec("data", "strategy", "Strategy", "choice", _choices(Strategy)),
    FieldSpec("data", "teacher_model", "Teacher model", "optchoice"),
    FieldSpec("data", "max_samples", "Max samples", "optint"),
    FieldSpec("data", "train_split", "Train split", "float"),
    FieldSpec("data", "eval_split", "Eval split", "float"),
    FieldSpec("data", "source_spec", "OpenAPI spec", "optchoice"),
    FieldSpec("", "tools", "Tool definitions (JSON list)", "json"),
    FieldSpec("evaluation", "enabled", "Evaluate after training", "bool"),
    FieldSpec("evaluation", "metrics", "Metrics", "multi", _choices(Metric)),
    FieldSpec("evaluation", "eval_set", "Eval dataset", "optchoice"),
    FieldSpec("logging", "tensorboard", "TensorBoard", "bool"),
    FieldSpec("logging", "logging_steps", "Log every N steps", "int"),
    FieldSpec("logging", "eval_steps", "Evaluate every N steps", "optint"),
    FieldSpec("export", "quantization_types", "Quantization types", "multi", _choices(QuantType)),
    FieldSpec("export", "push_to_hub", "Push to the Hugging Face Hub", "bool"),
    FieldSpec("export", "hub_repo_id", "Hub repository (owner/name)", "opttext"),
    FieldSpec("export", "hub_private", "Private Hub repository", "bool"),
    FieldSpec("", "seed", "Seed", "int"),
)
FIELDS_BY_PATH = {spec.path: spec for spec in FIELDS}
SECTION_TITLES = {
    "model": "Model",
    "tokenizer": "Tokenizer",
    "training": "Training",
    "data": "Data",
    "tools": "Tools",
    "evaluation": "Evaluation",
    "logging": "Logging",
    "export": "Export",
    "": "Reproducibility",
}


def field_help(spec: FieldSpec) -> str:
    model = TrainingConfigSpec
    if spec.section and spec.section in model.model_fields:
        section_model = model.model_fields[spec.section].annotation
        info = getattr(section_model, "model_fields", {}).get(spec.key)
        return (info.description or "") if info else ""
    return ""


def _make_field(spec: FieldSpec):
    if spec.kind == "bool":
        return BooleanField(spec.label)
    if spec.kind in ("choice", "optchoice"):
        return SelectField(spec.label, choices=[(c, c) for c in spec.choices], validate_choice=False)
    if spec.kind == "multi":
        return CheckboxesField(spec.label, choices=[(c, c) for c in spec.choices], validate_choice=False)
    if spec.kind in ("json", "longtext"):
        return TextAreaField(spec.label, validators=[Optional(), Length(max=200_000)])
    return StringField(spec.label, validators=[Optional(), Length(max=500)])


class ConfigEditorForm(Form):
    name = StringField("Config name", validators=[Length(max=120)])
    description = TextAreaField("Description", validators=[Optional(), Length(max=2000)])


for _spec in FIELDS:
    setattr(ConfigEditorForm, _spec.form_name, _make_field(_spec))


class ConfigUploadForm(Form):
    file = FileField("Config JSON file")
    name = StringField("Name", validators=[Optional(), Length(max=120)])


class ConfigActionForm(Form):
    """CSRF only (duplicate, delete)."""


def set_choices(form: ConfigEditorForm, datasets: list[str], models: list[str], specs: list[str]) -> None:
    """Fill the pickers with the user's own datasets, registry models and specs."""
    options = {
        "data.dataset": datasets,
        "data.teacher_model": models,
        "data.source_spec": specs,
        "evaluation.eval_set": datasets,
    }
    for path, names in options.items():
        field = form[FIELDS_BY_PATH[path].form_name]
        current = field.data
        values = sorted(set(names) | ({current} if current else set()))
        field.choices = [("", "— none —")] + [(n, n) for n in values]


def fill_form(form: ConfigEditorForm, config: dict[str, Any]) -> None:
    """Put a config's values into the editor (GET, or a template / uploaded config)."""
    for spec in FIELDS:
        value = config.get(spec.key) if not spec.section else config.get(spec.section, {}).get(spec.key)
        field = form[spec.form_name]
        if spec.kind == "json":
            field.data = json.dumps(value, indent=2) if value else ""
        elif spec.kind == "modules":
            field.data = value if isinstance(value, str) else ", ".join(value or [])
        elif spec.kind in ("bool", "multi"):
            field.data = value
        elif value is None:
            field.data = ""
        else:
            field.data = str(value) if spec.kind != "choice" else value


def form_to_config(form: ConfigEditorForm) -> tuple[dict[str, Any], list[Finding]]:
    """The editor's values as config JSON, and a finding for each value that is not what its field takes."""
    config: dict[str, Any] = {}
    problems: list[Finding] = []
    for spec in FIELDS:
        raw = form[spec.form_name].data
        try:
            value = _convert(spec, raw)
        except ValueError as exc:
            problems.append(Finding("error", spec.path, str(exc), "wrong_type"))
            continue
        if spec.section:
            config.setdefault(spec.section, {})[spec.key] = value
        else:
            config[spec.key] = value
    return config, problems


def _convert(spec: FieldSpec, raw: Any) -> Any:
    text = raw.strip() if isinstance(raw, str) else raw
    if spec.kind == "bool":
        return bool(raw)
    if spec.kind == "multi":
        return list(raw or [])
    if spec.kind in ("optchoice", "opttext", "longtext"):
        return text or None
    if spec.kind in ("choice", "text"):
        return text or ""
    if spec.kind == "modules":
        if not text or text == "all-linear":
            return "all-linear"
        return [m.strip() for m in text.split(",") if m.strip()]
    if spec.kind == "json":
        if not text:
            return []
        try:
            # no NaN, Infinity or 1e999 (stored as null)
            return loads_json(text, allow_constants=False, text_only=True)
        except ValueError:
            raise ValueError("Not valid JSON: paste a list of tool definitions.") from None
    if spec.kind == "optint" and not text:
        return None
    if not text:
        raise ValueError("Required.")
    if spec.kind in ("int", "optint"):
        try:
            return int(text)
        except ValueError:
            raise ValueError("Expected a whole number.") from None
    try:
        number = float(text)
    except ValueError:
        raise ValueError("Expected a number (like 0.0002 or 2e-4).") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError("Expected a finite number.")
    return number
