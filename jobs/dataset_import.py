"""Import a dataset repo from the Hugging Face Hub in the background.

The dataset row exists already (status `generating`, created by the web tier with the repo, an optional
file or folder and a revision in its options). This lists the repo's data files (.jsonl, .json,
.parquet), downloads them within the upload size limit, reads each with the same importer as an upload
(every format it knows: Toolsmith, OpenAI, ShareGPT, xLAM, DPO, ...), holds out the rows of test /
validation files, and fills the dataset, or marks it failed with a sentence that says why.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from typing import Any

from flask import current_app

from app.datasets.services import store_rows
from app.extensions import db
from app.json_input import finite_values
from app.models import Dataset, User
from jobs.dataset_generation import settle
from jobs.progress import JobFailed, tracked_job

DATA_SUFFIXES = (".jsonl", ".json", ".parquet")
MAX_FILES = 32
SHOWN_PROBLEMS = 3
PARQUET_BATCH_ROWS = 1024  # rows turned into Python objects at a time
# A file of the held-out split, as the Hub's own conventions name them: test.jsonl, data/validation-*.parquet,
# eval/…, dev.json.
EVAL_FILE = re.compile(r"(?:^|[/_.-])(?:test|tests|eval|evaluation|validation|valid|val|dev)(?:[/_.-]|$)")


class HubImportError(JobFailed):
    """A message a user can act on."""


@dataclass(frozen=True)
class HubFile:
    path: str
    size: int

    @property
    def held_out(self) -> bool:
        return bool(EVAL_FILE.search(self.path.lower()))


def run(job_id: int, dataset_id: int) -> dict[str, Any] | None:
    failure: str | None = None
    try:
        with tracked_job(job_id) as progress:
            dataset = db.session.get(Dataset, dataset_id)
            if dataset is None:
                raise JobFailed("The dataset was deleted before the import started.")
            owner = db.session.get(User, dataset.owner_id)
            options = dict(dataset.options or {})
            token = owner.hub_token() if owner else None
            config = current_app.config
            hub = HubSource(
                repo_id=options["repo"],
                revision=options.get("revision") or "main",
                token=token,
                endpoint=config["HF_ENDPOINT"],
                timeout=config["HF_HUB_TIMEOUT_SECONDS"],
            )
            limit = config["MAX_DATASET_UPLOAD_BYTES"]
            db.session.remove()
            try:
                progress.update(0.02, f"Listing the files of {hub.repo_id}")
                files = pick_files(hub.data_files(), options.get("path") or "", hub.repo_id)
                total = sum(f.size for f in files)
                if total > limit:
                    raise HubImportError(
                        f"The data files add up to {total / 2**20:.1f} MiB; the limit is "
                        f"{limit // 2**20} MiB. Pick one file or folder of the repo."
                    )
                kind, rows, formats = None, [], {}
                for number, file in enumerate(files, start=1):
                    progress.update(0.05 + 0.85 * (number - 1) / len(files), f"Reading {file.path}")
                    file_kind, file_rows, file_format = read_file(file, hub.download(file, limit), limit)
                    if kind is not None and file_kind != kind:
                        raise HubImportError(
                            f"{file.path} holds {file_kind.upper()} rows, "
                            f"the files before it {kind.upper()} rows."
                        )
                    kind = file_kind
                    formats.setdefault(file_format, None)
                    if file.held_out:
                        for row in file_rows:
                            row.setdefault("split", "eval")
                    rows.extend(file_rows)
            except HubImportError as exc:
                failure = str(exc)
                raise
            progress.update(0.95, f"Writing {len(rows)} rows")
            dataset = db.session.get(Dataset, dataset_id)
            if dataset is None:
                raise JobFailed("The dataset was deleted while it was being imported.")
            options["files"] = [f.path for f in files]
            stored = store_rows(
                dataset.owner_id,
                dataset.name,
                kind,
                rows,
                source="hub",
                source_format="+".join(formats)[:32],
                options=options,
                existing=dataset,
            )
            return progress.finish({"dataset_id": stored.id, "rows": stored.sample_count})
    finally:
        settle(dataset_id, failure, stopped="The import stopped before it finished.")


def pick_files(files: list[HubFile], wanted: str, repo_id: str) -> list[HubFile]:
    """The data files to read: `wanted` itself, or those under the folder `wanted`, or every one."""
    data = [f for f in files if f.path.lower().endswith(DATA_SUFFIXES) and not _hidden(f.path)]
    wanted = wanted.strip("/")
    if wanted:
        data = [f for f in files if f.path == wanted] or [f for f in data if f.path.startswith(wanted + "/")]
        if not data:
            raise HubImportError(f"{repo_id} has no file or folder {wanted!r}.")
        if not all(f.path.lower().endswith(DATA_SUFFIXES) for f in data):
            raise HubImportError(f"{wanted!r} is not a .jsonl, .json or .parquet file.")
    elif not data:
        raise HubImportError(f"{repo_id} holds no .jsonl, .json or .parquet file.")
    if len(data) > MAX_FILES:
        raise HubImportError(
            f"{repo_id} has {len(data)} data files; at most {MAX_FILES} are read at once. "
            "Pick one file or folder of the repo."
        )
    return sorted(data, key=lambda f: f.path)


def _hidden(path: str) -> bool:
    return any(part.startswith(".") for part in path.split("/"))


def read_file(file: HubFile, data: bytes, limit: int) -> tuple[str, list[dict[str, Any]], str]:
    """(kind, rows, format) of one downloaded file, through the upload importer; a Parquet file may
    unpack to at most `limit` bytes of rows, as an upload may be."""
    from app.datasets.importers import import_dataset

    name = file.path.rsplit("/", 1)[-1]
    if file.path.lower().endswith(".parquet"):
        data, name = _parquet_as_jsonl(file, data, limit), name.rsplit(".", 1)[0] + ".jsonl"
    result = import_dataset(data, name)
    if result.problems or not result.rows:
        problems = "; ".join(
            (f"line {p.line}: {p.message}" if p.line else p.message) for p in result.problems[:SHOWN_PROBLEMS]
        )
        raise HubImportError(f"{file.path}: {problems or 'no rows'}")
    return result.kind, result.rows, result.format


def _parquet_as_jsonl(file: HubFile, data: bytes, limit: int) -> bytes:
    """The rows as JSON lines, read a batch at a time and refused past `limit` bytes: Parquet compresses
    (a repeated string is stored once), so a small download can unpack to gigabytes."""
    import pyarrow
    import pyarrow.parquet as pq

    too_big = HubImportError(
        f"{file.path} unpacks to more than {limit / 2**20:.0f} MiB of rows, the limit for a dataset. "
        "Pick a smaller file or split it."
    )
    lines, size = [], 0
    try:
        parquet = pq.ParquetFile(io.BytesIO(data))
        metadata = parquet.metadata
        stored = sum(
            metadata.row_group(group).column(column).total_uncompressed_size
            for group in range(metadata.num_row_groups)
            for column in range(metadata.num_columns)
        )
        if stored > limit:  # before any page is decompressed
            raise too_big
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            for record in batch.to_pylist():
                # A missing float (NaN, as pandas writes one) in any column is null: NaN is no JSON.
                text = json.dumps(finite_values(record), ensure_ascii=False, default=str, allow_nan=False)
                line = (text + "\n").encode()
                size += len(line)
                if size > limit:
                    raise too_big
                lines.append(line)
    except (pyarrow.ArrowException, OSError) as exc:
        raise HubImportError(f"{file.path} is not a readable Parquet file ({exc}).") from exc
    return b"".join(lines)


@dataclass(frozen=True)
class HubSource:
    """One dataset repo at one revision, read with the owner's token when they saved one."""

    repo_id: str
    revision: str
    token: str | None
    endpoint: str
    timeout: float

    def data_files(self) -> list[HubFile]:
        from huggingface_hub import HfApi
        from huggingface_hub.hf_api import RepoFile

        api = HfApi(endpoint=self.endpoint, token=self.token or False)
        try:
            tree = api.list_repo_tree(
                self.repo_id,
                recursive=True,
                revision=self.revision,
                repo_type="dataset",
                token=self.token or False,
            )
            return [HubFile(entry.path, entry.size or 0) for entry in tree if isinstance(entry, RepoFile)]
        except Exception as exc:
            raise HubImportError(self._describe(exc)) from exc

    def download(self, file: HubFile, limit: int) -> bytes:
        """The file's bytes, refused as soon as they pass `limit` (a size the listing understated)."""
        from huggingface_hub import hf_hub_url
        from huggingface_hub.utils import build_hf_headers, get_session

        url = hf_hub_url(
            self.repo_id, file.path, repo_type="dataset", revision=self.revision, endpoint=self.endpoint
        )
        headers = build_hf_headers(token=self.token or False)
        chunks, size = [], 0
        try:
            # Redirects (to the Hub's file CDN) are followed; httpx drops the token on another origin.
            with get_session().stream(
                "GET", url, headers=headers, follow_redirects=True, timeout=max(self.timeout, 30)
            ) as response:
                if response.status_code >= 400:
                    raise HubImportError(self._status_sentence(response.status_code, file.path))
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise HubImportError(f"{file.path} is larger than the {limit // 2**20} MiB limit.")
                    chunks.append(chunk)
        except HubImportError:
            raise
        except Exception as exc:
            raise HubImportError(self._describe(exc)) from exc
        return b"".join(chunks)

    def _status_sentence(self, status: int, what: str | None = None) -> str:
        target = f"{what} in {self.repo_id}" if what else self.repo_id
        if status in (401, 403, 404):
            hint = (
                "the token saved in your account cannot read it"
                if self.token
                else "save a Hugging Face token in your account settings if it is private or gated"
            )
            return (
                f"The Hub has no dataset {target} at revision {self.revision!r}, or {hint} (HTTP {status})."
            )
        return f"The Hub answered HTTP {status} for {target}."

    def _describe(self, exc: BaseException) -> str:
        from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, OfflineModeIsEnabled

        if isinstance(exc, OfflineModeIsEnabled):
            return "Hugging Face Hub access is switched off here (HF_HUB_OFFLINE)."
        if isinstance(exc, GatedRepoError):
            return (
                f"{self.repo_id} is gated: accept its terms on the Hub, then save a token of that account in "
                "your account settings."
            )
        if isinstance(exc, HfHubHTTPError) and exc.response is not None:
            return self._status_sentence(exc.response.status_code)
        from jobs.training.hub_push import network_reason

        reason = network_reason(exc, self.endpoint, self.timeout)
        return f"The Hugging Face Hub is unreachable from this worker ({reason})."
