"""Training configs for the signed-in user: lint with what the app knows, save, copy, read uploads."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_login import current_user

from app.configs.estimates import ModelFacts, facts_from_gguf, facts_from_hf_config
from app.configs.linter import (
    CudaCheck,
    DatasetFacts,
    Finding,
    LintContext,
    LintReport,
    Throughput,
    fitting_batch,
    lint,
)
from app.configs.schema import DEFAULT_BASE_MODEL, TrainingConfigSpec
from app.datasets.stats import LENGTH_BUCKET
from app.extensions import db
from app.json_input import loads as loads_json
from app.model_store import model_folder
from app.models import ApiSpec, Dataset, LLMModel, TrainingConfig
from app.ownership import owned, visible
from app.serving.default_model import DEFAULT_MODEL_NAME, default_gguf_path

MAX_CONFIG_NAME = 120  # the column's length


class ConfigUploadError(ValueError):
    def __init__(self, findings: list[Finding]):
        super().__init__("; ".join(f.message for f in findings))
        self.findings = findings


def user_datasets() -> dict[str, DatasetFacts]:
    rows = db.session.execute(owned(Dataset)).scalars()
    return {row.name: dataset_facts(row) for row in rows if row.status == "ready"}


def dataset_facts(row: Dataset) -> DatasetFacts:
    """What the linter knows of a dataset: its size and stored figures, no row read."""
    stats = row.stats or {}
    return DatasetFacts(
        kind=row.kind,
        rows=row.sample_count,
        eval_rows=row.eval_count,
        marked_train_rows=stats.get("marked_train_rows"),
        mean_tokens=stats.get("mean_tokens"),
        length_bands=stats.get("length_buckets"),
        length_bands_without_tools=stats.get("length_buckets_without_tools"),
        length_band=LENGTH_BUCKET,
        distinct_requests=stats.get("distinct_requests"),
        eval_requests_in_train=stats.get("eval_requests_in_train"),
    )


def fit_to_dataset(config: dict[str, Any], dataset: Dataset) -> None:
    """A template's max length (768, say) cuts every row of a dataset generated with all of a spec's
    tools (about 2,700 tokens each for Petstore's), so a config opened from a dataset's page started
    with an error. It gets the max length that fits 95% of the rows instead (within the model's context),
    at the largest batch the worker's memory takes there, gradient accumulation keeping the effective
    batch (and gradient checkpointing turned on when no batch fits without it)."""
    fits = dataset_facts(dataset).length_fitting(0.95)
    if not fits or fits <= config["tokenizer"]["max_length"]:
        return
    model = model_facts(config["model"]["name"])
    if model is not None and model.context_length:
        fits = min(fits, model.context_length)
    config["tokenizer"]["max_length"] = fits
    memory = worker_memory_bytes()
    if model is None or not memory:
        return
    training = config["training"]
    batch = fitting_batch(TrainingConfigSpec.model_validate(config), model, memory, fits)
    if batch is None and not training.get("gradient_checkpointing"):
        training["gradient_checkpointing"] = True
        batch = fitting_batch(TrainingConfigSpec.model_validate(config), model, memory, fits)
    batch = batch or 1  # nothing fits: the linter's memory warning says so beside the batch size
    if batch < training["batch_size"]:
        effective = training["batch_size"] * training.get("gradient_accumulation_steps", 1)
        training["batch_size"] = batch
        training["gradient_accumulation_steps"] = math.ceil(effective / batch)


def measured_throughput(model_name: str) -> Throughput | None:
    """The latest finished run of this user on the same base model that measured its tokens per second."""
    from app.models import TrainingRun

    query = (
        owned(TrainingRun)
        .where(TrainingRun.tokens_per_second.is_not(None), TrainingRun.stage == "done")
        .order_by(TrainingRun.id.desc())
        .limit(50)
    )
    for run in db.session.execute(query).scalars():
        if (run.config or {}).get("model", {}).get("name") == model_name:
            return Throughput(run.tokens_per_second, run.id)
    return None


def registry_model_names() -> frozenset[str]:
    query = visible(LLMModel).where(LLMModel.enabled.is_(True))
    return frozenset(row.name for row in db.session.execute(query).scalars())


def model_facts(name: str) -> ModelFacts | None:
    """Architecture numbers for the estimates: the default base from its GGUF, a local folder from its
    config.json; None for a Hub id we have no copy of (no network at lint time)."""
    name = name.strip()
    if name in (DEFAULT_BASE_MODEL, DEFAULT_MODEL_NAME):
        try:
            return facts_from_gguf(str(default_gguf_path()))
        except (FileNotFoundError, ValueError):
            return None
    # Never outside the model store, nor in another user's runs (the same rule the training job uses).
    folder = model_folder(current_app.config["MODEL_STORE"], name, current_user.id)
    return facts_from_hf_config(folder / "config.json") if folder is not None else None


def worker_memory_bytes() -> int | None:
    """Memory of the machine the train worker runs on: the connected worker's report, else this one's."""
    from app.worker_capabilities import train_worker_capabilities

    reports = train_worker_capabilities() or []
    sizes = [r["memory_bytes"] for r in reports if r.get("memory_bytes")]
    if sizes:
        return max(sizes)
    import psutil

    return psutil.virtual_memory().total


def cuda_check() -> CudaCheck:
    from app.worker_capabilities import train_worker_capabilities

    reports = train_worker_capabilities()
    if reports is None:
        return CudaCheck(False, "the job queue (Redis) is unreachable, so no worker can be asked.")
    if not reports:
        return CudaCheck(False, "no worker is listening on the train queue.")
    if any(r.get("cuda") for r in reports):
        return CudaCheck(True)
    names = ", ".join(sorted(r.get("name", "?") for r in reports))
    return CudaCheck(False, f"the connected train worker(s) ({names}) have no CUDA device.")


def lint_for_user(raw: Any, submitting: bool = False) -> LintReport:
    return lint(raw, lint_context(raw, submitting))


def lint_context(raw: Any, submitting: bool = False) -> LintContext:
    """What the linter knows for the signed-in user and this config's model (datasets, registry, the
    workers' memory and CUDA): build it once to lint several variants of one config."""
    name = ""
    if (
        isinstance(raw, dict)
        and isinstance(raw.get("model"), dict)
        and isinstance(raw["model"].get("name"), str)
    ):
        name = raw["model"]["name"]
    uses_qlora = (
        isinstance(raw, dict)
        and isinstance(raw.get("training"), dict)
        and raw["training"].get("use_qlora") is True
    )
    # A CPU worker trains float16 in float32: the linter says so when it knows the workers.
    uses_float16 = (
        isinstance(raw, dict)
        and isinstance(raw.get("model"), dict)
        and raw["model"].get("torch_dtype") == "float16"
    )
    return LintContext(
        is_admin=bool(current_user.is_admin),
        datasets=user_datasets(),
        registry_models=registry_model_names(),
        model_facts=model_facts(name) if name else None,
        machine_memory_bytes=worker_memory_bytes(),
        cuda=cuda_check() if uses_qlora or uses_float16 or submitting else None,
        submitting=submitting,
        throughput=measured_throughput(name) if name else None,
        has_hub_token=bool(current_user.has_hub_token),
        spec_names=user_spec_names(),
    )


def user_spec_names() -> frozenset[str]:
    mine = sa.select(ApiSpec.name).where(ApiSpec.owner_id == current_user.id)
    return frozenset(db.session.execute(mine).scalars())


def findings_json(findings: list[Finding]) -> list[dict[str, str]]:
    return [{"path": f.path, "message": f.message, "rule": f.rule} for f in findings]


@dataclass
class SaveResult:
    config: TrainingConfig | None
    report: LintReport


def save_config(
    raw: Any,
    name: str,
    description: str = "",
    template_type: str | None = None,
    existing: TrainingConfig | None = None,
) -> SaveResult:
    """Lint and, when there is no error, store (a new row or `existing`). Errors save nothing."""
    report = lint_for_user(raw)
    if not report.ok:
        return SaveResult(None, report)
    row = existing or TrainingConfig(owner_id=current_user.id, template_type=template_type)
    row.name = name.strip()[:MAX_CONFIG_NAME] or "Untitled config"
    row.description = description.strip()
    row.config = report.config.model_dump(mode="json")
    row.validation_status = report.status
    row.errors = []
    row.warnings = findings_json(report.warnings)
    if existing is None:
        db.session.add(row)
    db.session.commit()
    return SaveResult(row, report)


def duplicate_config(source: TrainingConfig) -> TrainingConfig:
    copy = TrainingConfig(
        owner_id=current_user.id,
        name=unique_config_name(f"{source.name} (copy)"),
        description=source.description,
        template_type=source.template_type,
        config=json.loads(json.dumps(source.config)),
        validation_status=source.validation_status,
        errors=[],
        warnings=list(source.warnings or []),
    )
    db.session.add(copy)
    db.session.commit()
    return copy


def list_configs() -> list[TrainingConfig]:
    query = owned(TrainingConfig).order_by(TrainingConfig.updated_at.desc(), TrainingConfig.id.desc())
    return list(db.session.execute(query).scalars())


def unique_config_name(name: str) -> str:
    """`name`, or `name (2)`, `name (3)`… when the user already has a config of that name."""
    name = name.replace("\x00", "").strip()[: MAX_CONFIG_NAME - 10] or "Untitled config"
    candidate, n = name, 2
    while name_taken(candidate, None):
        candidate, n = f"{name} ({n})", n + 1
    return candidate


def name_taken(name: str, exclude_id: int | None = None) -> bool:
    query = owned(TrainingConfig).where(TrainingConfig.name == name.strip())
    if exclude_id is not None:
        query = query.where(TrainingConfig.id != exclude_id)
    return db.session.execute(query.with_only_columns(sa.func.count())).scalar_one() > 0


def read_upload(data: bytes, limit: int) -> Any:
    """Uploaded bytes → a JSON value, or ConfigUploadError saying what is wrong with the file itself."""
    if len(data) > limit:
        raise ConfigUploadError(
            [
                Finding(
                    "error",
                    "",
                    f"The file is {len(data) // 1024} KB; the limit is {limit // 1024} KB.",
                    "too_large",
                )
            ]
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigUploadError([Finding("error", "", "The file is not UTF-8 text.", "not_json")]) from None
    try:
        # NaN, Infinity and 1e999 are no JSON numbers
        return loads_json(text, allow_constants=False, text_only=True)
    except ValueError as exc:
        raise ConfigUploadError([Finding("error", "", f"Not valid JSON: {exc}", "not_json")]) from None
