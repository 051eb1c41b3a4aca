"""The training config: sections, defaults, types, and the two JSON shapes it travels in.

The key names are those of the Tiny Tool Use trainer's `train.py` configs (`model.torch_dtype`,
`training.num_epochs`, `training.use_lora`, `training.lora_r`, ...), so its configs load as-is. A
config is stored whole, every default filled in (the "toolsmith" shape); `train_py_shape` gives back
only the sections and keys `train.py` reads.

pydantic does the typing: unknown keys and wrong types become field-specific problems
(`training.batch_size: expected an integer`), never an exception. Strict mode, because a config is
JSON: `"4"` is not a batch size and `true` is not a learning rate. Rules about values (batch size
at least 1, a preference dataset for DPO, ...) live in `linter`, which also explains them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Dtype = Literal["auto", "float32", "float16", "bfloat16"]
Device = Literal["auto", "cpu", "cuda"]
Method = Literal["sft", "dpo"]
Scheduler = Literal[
    "linear", "cosine", "cosine_with_restarts", "constant", "constant_with_warmup", "polynomial"
]
Strategy = Literal["as_is", "teacher"]
QuantType = Literal["Q4_K_M", "Q5_K_M", "Q8_0", "F16"]
Metric = Literal["tool_call_accuracy", "valid_call_rate", "exact_match", "eval_loss"]
# The metrics measured on the exported model's answers to held-out rows (eval_loss comes from training):
# with none of them chosen, the export skips generating those answers.
ANSWER_METRICS = ("tool_call_accuracy", "valid_call_rate", "exact_match")


def answer_metrics(chosen: Iterable[str]) -> list[str]:
    return [name for name in ANSWER_METRICS if name in chosen]


DEFAULT_BASE_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
SCHEMA_VERSION = 1
# Ceiling for sizes and counts: far past any real run, low enough that the estimates' arithmetic
# (bytes, seconds as floats) cannot overflow on a pasted 300-digit number.
MAX_COUNT = 10**9


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_default=True, allow_inf_nan=False)


class ModelSection(_Section):
    name: str = Field("", description="Hub id or a folder under MODEL_STORE", max_length=500)
    torch_dtype: Dtype = Field(
        "auto",
        description="Weights dtype: auto = bf16 on GPUs that support it; float32 on CPU, "
        "computing in bf16 where the CPU has bf16 instructions",
    )
    device: Device = "auto"
    trust_remote_code: bool = Field(
        False, description="Run the model repository's own Python code (admins only)"
    )


class TokenizerSection(_Section):
    name: str | None = Field(
        None,
        description="Runs always use the model's own tokenizer (a different one is ignored)",
        max_length=500,
    )
    padding_side: Literal["right", "left"] = "right"
    max_length: int = Field(
        1024, le=MAX_COUNT, description="Longest training row in tokens; longer rows are truncated"
    )
    chat_template: str | None = Field(
        None, description="Jinja chat template; empty = the model's own, made tool-aware", max_length=20_000
    )


class TrainingSection(_Section):
    method: Method = "sft"
    num_epochs: float = Field(1.0, le=MAX_COUNT)
    max_steps: int | None = Field(
        None, le=MAX_COUNT, description="Stop after this many optimizer steps (overrides epochs)"
    )
    learning_rate: float = 2e-4
    lr_scheduler_type: Scheduler = "linear"
    warmup_ratio: float = Field(0.03, description="Share of the steps spent warming up the learning rate")
    batch_size: int = Field(4, le=MAX_COUNT, description="Rows per device per step")
    gradient_accumulation_steps: int = Field(1, le=MAX_COUNT)
    use_lora: bool = True
    lora_r: int | None = Field(16, le=MAX_COUNT)
    lora_alpha: int = Field(32, le=MAX_COUNT)
    lora_dropout: float = 0.05
    lora_target_modules: list[str] | Literal["all-linear"] = "all-linear"
    use_qlora: bool = Field(
        False, description="Load the base model in 4-bit (bitsandbytes; needs a CUDA worker)"
    )
    packing: bool = Field(False, description="Pack short rows together (measured slower on CPU)")
    gradient_checkpointing: bool = Field(False, description="Less memory, ~20% slower")
    dpo_beta: float = Field(0.1, description="DPO: how far the model may move from the reference")
    early_stopping_patience: int | None = Field(
        None,
        le=MAX_COUNT,
        description="Stop when the eval loss has not improved for this many evaluations in a row, and keep "
        "the best weights; empty = train to the end",
    )


class DataSection(_Section):
    dataset: str | None = Field(
        None, description="One of your datasets, by name; can also be picked when a run starts"
    )
    strategy: Strategy = Field(
        "as_is", description="as_is: train on the dataset's answers; teacher: a teacher model writes them"
    )
    teacher_model: str | None = Field(None, description="Teacher Mode: a model from the registry, by name")
    max_samples: int | None = Field(None, le=MAX_COUNT, description="Use at most this many rows")
    train_split: float = Field(0.9, description="Share of rows used for training")
    eval_split: float = Field(0.1, description="Share of rows held out for evaluation (eval loss, accuracy)")
    source_spec: str | None = Field(
        None, description="The OpenAPI spec the dataset is generated from, by name"
    )


class EvaluationSection(_Section):
    enabled: bool = True
    metrics: list[Metric] = Field(default_factory=lambda: ["tool_call_accuracy", "valid_call_rate"])
    eval_set: str | None = Field(None, description="A dataset to evaluate on; empty = the held-out split")


class LoggingSection(_Section):
    tensorboard: bool = False
    logging_steps: int = Field(10, le=MAX_COUNT)
    eval_steps: int | None = Field(
        None,
        le=MAX_COUNT,
        description="Evaluate (eval loss, a sample answer) and save a checkpoint every this many steps; "
        "empty = 5 × logging steps, at least 10",
    )


class ExportSection(_Section):
    quantization_types: list[QuantType] = Field(
        default_factory=lambda: ["Q4_K_M"],
        description="Q4_K_M reads prompts fastest on a CPU for its size; Q5_K_M is the slowest",
    )
    push_to_hub: bool = Field(False, description="push the merged model and GGUFs with your Hub token")
    hub_repo_id: str | None = Field(None, description="the Hub repository, as owner/name", max_length=200)
    hub_private: bool = Field(True, description="create the Hub repository as private")


class TrainingConfigSpec(_Section):
    """A whole config. `tools` holds OpenAI-style function definitions offered in every training row
    that offers none of its own (`jobs.training.data.with_config_tools`)."""

    model: ModelSection = Field(default_factory=ModelSection)
    tokenizer: TokenizerSection = Field(default_factory=TokenizerSection)
    training: TrainingSection = Field(default_factory=TrainingSection)
    data: DataSection = Field(default_factory=DataSection)
    tools: list[dict[str, Any]] = Field(default_factory=list)
    evaluation: EvaluationSection = Field(default_factory=EvaluationSection)
    logging: LoggingSection = Field(default_factory=LoggingSection)
    export: ExportSection = Field(default_factory=ExportSection)
    seed: int = Field(42, ge=0, le=2**32 - 1)  # what numpy's seeding accepts


SECTIONS: tuple[str, ...] = tuple(TrainingConfigSpec.model_fields)
# What the Tiny Tool Use trainer's train.py reads; the rest is Toolsmith's (pipeline and export).
TRAIN_PY_SECTIONS: tuple[str, ...] = (
    "model",
    "tokenizer",
    "training",
    "data",
    "tools",
    "evaluation",
    "logging",
    "seed",
)


def parse_config(raw: Any) -> tuple[TrainingConfigSpec | None, list[tuple[str, str]]]:
    """A typed config, or None and (field path, message) for every key or type that is wrong."""
    if not isinstance(raw, dict):
        return None, [("", f"A config is a JSON object, not {_json_type(raw)}.")]
    try:
        return TrainingConfigSpec.model_validate(raw), []
    except ValidationError as error:
        return None, [(_path(e["loc"]), _message(e)) for e in error.errors(include_url=False)]
    except (RecursionError, ValueError, TypeError) as error:  # absurdly nested or exotic input
        return None, [("", f"The config could not be read: {type(error).__name__}.")]


def default_config() -> dict[str, Any]:
    return TrainingConfigSpec().model_dump(mode="json")


def train_py_shape(config: TrainingConfigSpec) -> dict[str, Any]:
    """The config as the Tiny Tool Use trainer's `train.py` reads it."""
    full = config.model_dump(mode="json")
    return {section: full[section] for section in TRAIN_PY_SECTIONS}


def json_schema() -> dict[str, Any]:
    schema = TrainingConfigSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Toolsmith training config"
    return schema


def _path(loc: tuple[Any, ...]) -> str:
    # pydantic names the branch of a union it tried ("list[str]", "literal['all-linear']"): not a key.
    keys = [str(part) for part in loc if not (isinstance(part, str) and ("[" in part or part in _TYPE_NAMES))]
    return ".".join(keys)


_TYPE_NAMES = {"str", "int", "float", "bool", "none", "dict", "list"}


def _message(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "Unknown key: remove it or check its spelling."
    if kind == "missing":
        return "Required."
    if kind.startswith("literal_error"):
        return error["msg"].replace("Input should be", "Must be") + "."
    expected = _EXPECTED.get(kind)
    if expected:
        return f"Expected {expected}, got {_json_type(error.get('input'))}."
    return str(error["msg"]) + "."


_EXPECTED = {
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "text",
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "none_required": "null",
    "string_too_long": "shorter text",
    "finite_number": "a finite number",
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def evaluation_interval(config: TrainingConfigSpec) -> int:
    """Steps between evaluations and between checkpoints (the same, so the best evaluation has weights)."""
    return config.logging.eval_steps or max(10, config.logging.logging_steps * 5)
