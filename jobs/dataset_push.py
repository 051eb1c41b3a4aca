"""The dataset push job: the rows as a Hub dataset repo (train and test splits) with a card, one commit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.datasets.storage import read_lines
from app.extensions import db
from app.models import Dataset, User
from app.row_lock import lock_row
from jobs.progress import tracked_job


def run(job_id: int, dataset_id: int, repo_id: str, private: bool) -> dict[str, Any] | None:
    """Push; the outcome (URL or the reason it failed) goes on the dataset whatever happens."""
    from jobs.training.hub_push import HubPushError, push_files

    outcome: dict[str, Any] = {"repo": repo_id, "error": "The push stopped before it finished."}
    recorded = False
    try:
        with tracked_job(job_id) as progress:
            _adopt_claim(dataset_id, job_id)
            dataset = db.session.get(Dataset, dataset_id)
            owner = db.session.get(User, dataset.owner_id) if dataset else None
            token = owner.hub_token() if owner else None
            if dataset is None or not dataset.file_path or not Path(dataset.file_path).is_file():
                outcome = {"repo": repo_id, "error": "The dataset's file is gone: nothing was pushed."}
            elif not token:
                outcome = {"repo": repo_id, "error": "No Hugging Face token is saved in your account."}
            else:
                # Read before `progress.update`, which ends the session the row belongs to.
                uploads, rows, name = dataset_files(dataset), dataset.sample_count, dataset.name
                progress.update(0.1, f"Pushing {name} to {repo_id}")
                try:
                    pushed = push_files(token, repo_id, uploads, private=private, repo_type="dataset")
                except HubPushError as exc:
                    outcome = {"repo": repo_id, "error": str(exc)}
                else:
                    outcome = {"repo": pushed.repo_id, "url": pushed.url, "files": len(pushed.files),
                               "rows": rows}  # fmt: skip
            # Recorded while the job still runs: once it has ended, a new push may claim the dataset.
            _record(dataset_id, job_id, outcome)
            recorded = True
            return progress.finish(outcome)
    finally:
        if not recorded:
            _record(dataset_id, job_id, outcome)
        db.session.remove()


def dataset_files(dataset: Dataset) -> dict[str, bytes]:
    """data/train.jsonl, data/test.jsonl (when rows are held out) and README.md, the rows' text as stored."""
    train: list[str] = []
    test: list[str] = []
    for line in read_lines(Path(dataset.file_path)):
        (test if json.loads(line).get("split") == "eval" else train).append(line)
    files = {"data/train.jsonl": "".join(train).encode()}
    if test:
        files["data/test.jsonl"] = "".join(test).encode()
    files["README.md"] = dataset_card(dataset, len(train), len(test)).encode()
    return files


def dataset_card(dataset: Dataset, train: int, test: int) -> str:
    splits = [("train", "data/train.jsonl", train)] + ([("test", "data/test.jsonl", test)] if test else [])
    data_files = "".join(f"  - split: {name}\n    path: {path}\n" for name, path, _ in splits)
    dpo = dataset.kind == "dpo"
    kind = "preference pairs (DPO: prompt, chosen, rejected)" if dpo else "conversations (SFT)"
    counts = ", ".join(f"{rows:,} {name}" for name, _, rows in splits)
    return (
        "---\n"
        "configs:\n"
        "- config_name: default\n"
        "  data_files:\n"
        f"{data_files}"
        "tags:\n- tool-calling\n- function-calling\n- toolsmith\n"
        "---\n\n"
        f"# {dataset.name}\n\n"
        f"Tool-calling {kind}, {counts} rows, made with Toolsmith (source: {dataset.source}).\n\n"
        "Each line is one JSON row: `messages` (or `prompt` / `chosen` / `rejected`) in the OpenAI chat "
        "format, assistant `tool_calls` with `arguments` as a JSON object, and the `tools` offered (OpenAI "
        "function tools).\n"
    )


def _adopt_claim(dataset_id: int, job_id: int) -> None:
    """The push route claims the dataset before it has this job's id and records the id after queueing:
    a request that died between the two leaves a claim only this job can answer for."""
    lock_row(Dataset, dataset_id)
    dataset = db.session.get(Dataset, dataset_id)
    state = (dataset.hub_push or {}) if dataset is not None else {}
    if state.get("pushing") and state.get("job") is None:
        dataset.hub_push = {**state, "job": job_id}
    db.session.commit()


def _record(dataset_id: int, job_id: int, outcome: dict[str, Any]) -> None:
    """The outcome on the dataset, unless a later push has claimed it since; committed."""
    lock_row(Dataset, dataset_id)
    dataset = db.session.get(Dataset, dataset_id)
    if dataset is not None and (dataset.hub_push or {}).get("job") in (job_id, None):
        dataset.hub_push = outcome
    db.session.commit()
