"""Datasets for the signed-in user: import a file, generate from a spec (inline or as a job), delete.

A dataset is a database row plus one JSONL file. Both appear together or not at all: the file is
written completely before the row is committed, and a failure removes whatever was written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from app.datasets.stats import dataset_stats
from app.datasets.storage import dataset_path, remove_file, write_rows
from app.extensions import db
from app.models import ApiSpec, Dataset, DatasetKind, DatasetStatus
from app.ownership import owned

MAX_NAME = 120
SOURCE_FORMAT_CHARS = 32  # Dataset.source_format


@dataclass
class DatasetProblem:
    message: str
    line: int | None = None


class DatasetError(ValueError):
    def __init__(self, problems: list[DatasetProblem]):
        super().__init__("; ".join(p.message for p in problems[:3]))
        self.problems = problems


@dataclass
class GenerationRequest:
    samples_per_operation: int = 20
    seed: int = 0
    include_irrelevant: bool = True
    dpo: bool = False
    eval_fraction: float = 0.1
    tools_per_row: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "samples_per_operation": self.samples_per_operation,
            "seed": self.seed,
            "include_irrelevant": self.include_irrelevant,
            "dpo": self.dpo,
            "eval_fraction": self.eval_fraction,
            "tools_per_row": self.tools_per_row,
        }


def list_datasets() -> list[Dataset]:
    return list(
        db.session.execute(owned(Dataset).order_by(Dataset.created_at.desc(), Dataset.id.desc())).scalars()
    )


def name_taken(name: str) -> bool:
    query = owned(Dataset).where(Dataset.name == name).with_only_columns(sa.func.count())
    return db.session.execute(query).scalar_one() > 0


def unique_name(name: str) -> str:
    base = (name.replace("\x00", "").strip() or "dataset")[: MAX_NAME - 8]  # as saving would strip it
    candidate, n = base, 2
    while name_taken(candidate):
        candidate, n = f"{base} ({n})", n + 1
    return candidate


def store_rows(
    owner_id: int,
    name: str,
    kind: str,
    rows: list[dict[str, Any]],
    *,
    source: str,
    source_format: str,
    spec_id: int | None = None,
    options: dict[str, Any] | None = None,
    existing: Dataset | None = None,
) -> Dataset:
    """Write the file, then commit the row (new, or `existing` filled in); neither is left on failure."""
    row = existing or Dataset(owner_id=owner_id, name=name, kind=kind, source=source, spec_id=spec_id)
    # A file mixing many formats names them all ("toolsmith+openai+prompt-completion"): past the
    # column's width it is just "mixed".
    row.source_format = source_format if len(source_format) <= SOURCE_FORMAT_CHARS else "mixed"
    row.options = options or {}
    if existing is None:
        db.session.add(row)
    try:
        db.session.flush()  # the id names the file
    except IntegrityError:
        # The name was free when it was picked; another request (a second tab, a double submit) took it.
        db.session.rollback()
        taken = f"A dataset named {name!r} was saved a moment ago, from another tab? Pick another name."
        raise DatasetError([DatasetProblem(taken)]) from None
    path = dataset_path(current_app.config["DATASET_STORE"], owner_id, row.id)
    try:
        write_rows(path, rows)
        row.file_path = str(path)
        row.kind = kind
        row.sample_count = len(rows)
        row.eval_count = sum(1 for r in rows if r.get("split") == "eval")
        row.train_count = row.sample_count - row.eval_count
        row.stats = dataset_stats(rows, kind)
        row.status = DatasetStatus.READY.value
        row.error = None
        db.session.commit()
    except BaseException:
        db.session.rollback()
        remove_file(path)
        raise
    return row


def import_file(data: bytes, filename: str, name: str) -> Dataset:
    from app.datasets.importers import import_dataset

    limit = current_app.config["MAX_DATASET_UPLOAD_BYTES"]
    if len(data) > limit:
        raise DatasetError(
            [DatasetProblem(f"The file is {len(data) // 2**20} MiB; the limit is {limit // 2**20} MiB.")]
        )
    result = import_dataset(data, filename)
    if result.problems or not result.rows:
        problems = [DatasetProblem(p.message, p.line) for p in result.problems]
        raise DatasetError(problems or [DatasetProblem("The file holds no rows.")])
    return store_rows(
        current_user.id,
        unique_name(name or Path(filename).stem),
        result.kind,
        result.rows,
        source="upload",
        source_format=result.format,
    )


def spec_for_generation(spec_id: int) -> ApiSpec | None:
    return db.session.execute(owned(ApiSpec).where(ApiSpec.id == spec_id)).scalar_one_or_none()


def expected_rows(spec: ApiSpec, request: GenerationRequest) -> int:
    return spec.operation_count * request.samples_per_operation


def generate_inline(spec: ApiSpec, request: GenerationRequest, name: str) -> Dataset:
    rows, message = generate_rows(spec.normalised, request)
    if not rows:
        raise DatasetError([DatasetProblem(message or "Nothing was generated.")])
    return store_rows(
        current_user.id,
        unique_name(name),
        DatasetKind.DPO.value if request.dpo else DatasetKind.SFT.value,
        rows,
        source="generated",
        source_format="toolsmith",
        spec_id=spec.id,
        options=request.as_dict(),
    )


def generate_rows(normalised: dict[str, Any], request: GenerationRequest, progress=None) -> tuple[list, str]:
    from app.datasets.generation import GenerationOptions, generate_dataset
    from app.openapi.normalise import NormalisedSpec

    options = GenerationOptions(
        samples_per_operation=request.samples_per_operation,
        seed=request.seed,
        include_irrelevant=request.include_irrelevant,
        dpo=request.dpo,
        eval_fraction=request.eval_fraction,
        tools_per_row=request.tools_per_row,
    )
    result = generate_dataset(NormalisedSpec.from_dict(normalised), options, progress=progress)
    return result.rows, result.message


def start_generation_job(spec: ApiSpec, request: GenerationRequest, name: str) -> Dataset:
    """A placeholder row (status generating) and a job on the default queue that fills it."""
    from app.queueing import enqueue_for

    row = Dataset(
        owner_id=current_user.id,
        name=unique_name(name),
        kind=DatasetKind.DPO.value if request.dpo else DatasetKind.SFT.value,
        source="generated",
        source_format="toolsmith",
        spec_id=spec.id,
        options=request.as_dict(),
        status=DatasetStatus.GENERATING.value,
    )
    db.session.add(row)
    db.session.commit()
    enqueue_for(
        row,
        owner_id=current_user.id,
        kind="dataset_generation",
        title=f"Generate dataset {row.name} from {spec.label}",
        func="jobs.dataset_generation.run",
        args=(row.id, spec.id),
    )
    return row


def reconcile_dataset(dataset: Dataset) -> None:
    """A dataset still `generating` whose job already ended without settling it (cancelled while
    queued, so the job never ran; its worker killed): failed with the job's reason, no file left. The
    job settles it itself in every other case; this keeps the page from polling forever."""
    from app.models import BackgroundJob, JobStatus

    if dataset.status != DatasetStatus.GENERATING.value or not dataset.job_id:
        return
    job = db.session.get(BackgroundJob, dataset.job_id)
    if job is not None and job.is_active:
        return
    if job is not None and job.error:
        reason = job.error
    elif job is not None and job.status == JobStatus.CANCELLED:
        reason = "Cancelled before it finished."
    else:
        reason = "Generation stopped before it finished."
    mark_generation_failed(dataset, reason)
    db.session.commit()


def mark_generation_failed(dataset: Dataset, reason: str) -> None:
    """A dataset whose generation or import ended unfinished: failed with `reason`, its partial file
    gone (the caller commits)."""
    dataset.status = DatasetStatus.FAILED.value
    dataset.error = reason
    remove_file(
        dataset.file_path or dataset_path(current_app.config["DATASET_STORE"], dataset.owner_id, dataset.id)
    )
    dataset.file_path = None


def combine_datasets(
    sources: list[Dataset], name: str, *, drop_duplicates: bool, eval_share: float | None, seed: int
) -> tuple[Dataset, int]:
    """A new dataset holding the rows of `sources` (the user's, ready, of one kind); also the number of
    duplicate rows dropped."""
    from app.datasets.combine import combine_rows
    from app.datasets.storage import read_rows

    problems = []
    if len(sources) < 2:
        problems.append(DatasetProblem("Pick at least two datasets to combine."))
    if len({d.kind for d in sources}) > 1:
        problems.append(DatasetProblem("Datasets of one kind only: SFT with SFT, DPO with DPO."))
    not_ready = [d.name for d in sources if d.status != DatasetStatus.READY.value or not d.file_path]
    if not_ready:
        problems.append(DatasetProblem(f"Not ready yet: {', '.join(not_ready)}."))
    if problems:
        raise DatasetError(problems)
    combined = combine_rows(
        (read_rows(Path(d.file_path)) for d in sources),
        drop_duplicates=drop_duplicates,
        eval_share=eval_share,
        seed=seed,
    )
    options = {
        "from": [{"id": d.id, "name": d.name, "rows": d.sample_count} for d in sources],
        "drop_duplicates": drop_duplicates,
        "eval_fraction": eval_share,
        "seed": seed,
    }
    dataset = store_rows(
        current_user.id,
        unique_name(name),
        sources[0].kind,
        combined.rows,
        source="combined",
        source_format="toolsmith",
        options=options,
    )
    return dataset, combined.duplicates


def delete_dataset(row: Dataset) -> None:
    path = row.file_path
    db.session.delete(row)
    db.session.commit()
    remove_file(path)
