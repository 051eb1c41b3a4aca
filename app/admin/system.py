"""What an operator needs to see of the installation: workers and what they can do, queue depths, and
disk use (free space, each store, each user's share). Read-only; admins only.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app

from app.extensions import db
from app.models import Dataset, LLMModel, TrainingRun, User


@dataclass
class WorkerRow:
    name: str
    queues: list[str]
    state: str
    job: str | None
    seen_s: float | None  # seconds since its last heartbeat
    memory_bytes: int | None = None
    cpu_count: int | None = None
    cuda: str = "not probed yet"


@dataclass
class QueueRow:
    name: str
    queued: int
    running: int
    failed: int


@dataclass
class UserUsage:
    email: str
    datasets: int = 0
    models: int = 0
    runs: int = 0

    @property
    def total(self) -> int:
        return self.datasets + self.models + self.runs


@dataclass
class ServingReport:
    """This web process's local llama.cpp models (each web process has its own)."""

    models: list[tuple[str, str, int | None]] = field(default_factory=list)  # (name, path, held tokens)
    states_enabled: bool = False
    states_count: int = 0
    states_bytes: int = 0
    states_capacity: int = 0
    saves: int = 0
    restores: int = 0


@dataclass
class SystemReport:
    workers: list[WorkerRow] = field(default_factory=list)
    queues: list[QueueRow] = field(default_factory=list)
    redis_error: str | None = None
    disk_total: int = 0
    disk_free: int = 0
    stores: list[tuple[str, str, int]] = field(default_factory=list)  # (label, path, bytes)
    users: list[UserUsage] = field(default_factory=list)
    serving: ServingReport = field(default_factory=ServingReport)


def system_report() -> SystemReport:
    report = SystemReport()
    try:
        report.workers, report.queues = _workers(), _queues()
    except Exception as exc:  # Redis down or unreachable: the page says so instead of failing
        report.redis_error = f"{type(exc).__name__}: {exc}"[:300]
    model_store = Path(current_app.config["MODEL_STORE"])
    usage = shutil.disk_usage(model_store if model_store.exists() else current_app.instance_path)
    report.disk_total, report.disk_free = usage.total, usage.free
    dataset_store = Path(current_app.config["DATASET_STORE"])
    report.stores = [
        ("Models (uploaded GGUFs and exports)", str(model_store), _tree_size(model_store, skip="runs")),
        (
            "Training runs (checkpoints, merged models)",
            str(model_store / "runs"),
            _tree_size(model_store / "runs"),
        ),
        ("Datasets", str(dataset_store), _tree_size(dataset_store)),
    ]
    report.users = _user_usage(model_store / "runs")
    report.serving = _serving()
    return report


def _serving() -> ServingReport:
    """Read without loading anything: a process that has served no local model has no holder yet."""
    report = ServingReport()
    holder = current_app.extensions.get("toolsmith_local_models")
    if holder is None:
        return report
    loaded = holder.snapshot()
    names = dict(
        db.session.execute(
            sa.select(LLMModel.gguf_path, LLMModel.name).where(LLMModel.gguf_path.in_([p for p, _ in loaded]))
        ).all()
    )
    report.models = [(names.get(path, Path(path).name), path, held) for path, held in loaded]
    states = holder.prompt_states
    if states is not None:
        report.states_enabled = True
        report.states_count, report.states_bytes = states.count, states.size
        report.states_capacity = states.capacity_bytes
        report.saves, report.restores = states.saves, states.restores
    return report


def _workers() -> list[WorkerRow]:
    from rq import Worker

    from app.queueing import redis_connection
    from app.worker_capabilities import KEY_PREFIX

    connection = redis_connection()
    rows = []
    now = datetime.now(UTC)
    for worker in Worker.all(connection=connection):
        beat = worker.last_heartbeat
        seen = (now - beat.replace(tzinfo=beat.tzinfo or UTC)).total_seconds() if beat else None
        row = WorkerRow(
            name=worker.name,
            queues=worker.queue_names(),
            state=str(worker.get_state()),
            job=worker.get_current_job_id(),
            seen_s=seen,
        )
        raw = connection.get(KEY_PREFIX + worker.name)
        capabilities: dict[str, Any] = json.loads(raw) if raw else {}
        row.memory_bytes, row.cpu_count = capabilities.get("memory_bytes"), capabilities.get("cpu_count")
        if capabilities.get("cuda"):
            row.cuda = capabilities.get("cuda_device") or "yes"
        elif capabilities.get("cuda") is False:
            row.cuda = "no"
        rows.append(row)
    return sorted(rows, key=lambda r: r.name)


def _queues() -> list[QueueRow]:
    from app.queueing import QUEUE_NAMES, get_queue

    rows = []
    for name in QUEUE_NAMES:
        queue = get_queue(name)
        rows.append(
            QueueRow(name, queue.count, queue.started_job_registry.count, queue.failed_job_registry.count)
        )
    return rows


def _user_usage(runs_root: Path) -> list[UserUsage]:
    users = {
        user_id: UserUsage(email) for user_id, email in db.session.execute(sa.select(User.id, User.email))
    }
    for owner_id, path in db.session.execute(sa.select(Dataset.owner_id, Dataset.file_path)):
        if owner_id in users and path:
            users[owner_id].datasets += _file_size(Path(path))
    owned_models = sa.select(LLMModel.owner_id, sa.func.sum(LLMModel.file_size)).group_by(LLMModel.owner_id)
    for owner_id, size in db.session.execute(owned_models):
        if owner_id in users:
            users[owner_id].models += int(size or 0)
    for owner_id in db.session.execute(sa.select(TrainingRun.owner_id).distinct()).scalars():
        if owner_id in users:
            users[owner_id].runs = _tree_size(runs_root / str(owner_id))
    return sorted(users.values(), key=lambda u: (-u.total, u.email))


def _tree_size(root: Path, skip: str | None = None) -> int:
    """Bytes of the files under `root` (not following links); `skip` names a top-level folder left out."""
    total = 0
    if not root.is_dir():
        return 0
    for folder, folders, files in os.walk(root):
        if skip and Path(folder) == root and skip in folders:
            folders.remove(skip)
        total += sum(_file_size(Path(folder) / name) for name in files)
    return total


def _file_size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return 0
