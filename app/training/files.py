"""Where a run's files live and which checkpoint is its last: shared by the job and the run pages."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from flask import current_app

KEEP_CHECKPOINTS = 2
EVAL_ITEMS_FILE = "eval_items.jsonl"  # the export's evaluation, one held-out row's answer per line
ADAPTER_DIR = "adapter"  # under the run's trainer folder: the trained adapter (or the whole model)
TRAINED_MARKER = "trained.json"  # in the adapter folder, written last: training ended as planned


def run_dir(owner_id: int, run_id: int) -> Path:
    return Path(current_app.config["MODEL_STORE"]) / "runs" / str(owner_id) / str(run_id)


def mark_trained(adapter: Path, step: int) -> None:
    """Record that `adapter` holds the weights training ended with (not a cancel's, not a half-written
    save): the export may then be redone without training again. Written atomically, last."""
    partial = adapter / f".{TRAINED_MARKER}.part"
    partial.write_text(json.dumps({"step": step}))
    partial.replace(adapter / TRAINED_MARKER)


def is_trained(adapter: Path) -> bool:
    return (adapter / TRAINED_MARKER).is_file()


def last_checkpoint(trainer_dir: Path) -> Path | None:
    """The newest complete `checkpoint-N` folder; older ones beyond KEEP_CHECKPOINTS are pruned on the
    way. The trainer writes `trainer_state.json` last, so a folder without it is a save cut short (the
    worker killed mid-save): never resumed from, and never a reason to prune a complete one. The best
    checkpoint of early stopping (named in the newest one's state) is kept too: a resumed run ends by
    loading it."""
    checkpoints = sorted(
        (
            p
            for p in trainer_dir.glob("checkpoint-*")
            if checkpoint_step(p) is not None and (p / "trainer_state.json").is_file()
        ),
        key=checkpoint_step,
    )
    best = _best_checkpoint_name(checkpoints[-1]) if checkpoints else None
    for stale in checkpoints[:-KEEP_CHECKPOINTS]:
        if stale.name != best:
            shutil.rmtree(stale, ignore_errors=True)
    return checkpoints[-1] if checkpoints else None


def checkpoint_step(checkpoint: str | Path) -> int | None:
    """The step a `checkpoint-N` folder was saved at; None for any other name."""
    suffix = Path(checkpoint).name.rsplit("-", 1)[-1]
    return int(suffix) if suffix.isdigit() else None


def registered_gguf_paths(owner_id: int) -> set[Path]:
    """Every GGUF the user's registered models use (resolved): files a run's cleanup must leave alone,
    whichever attempt of the run (or earlier run with the same id) wrote them."""
    from app.extensions import db
    from app.models import LLMModel

    query = db.select(LLMModel.gguf_path).where(
        LLMModel.owner_id == owner_id, LLMModel.gguf_path.is_not(None)
    )
    return {Path(path).resolve() for path in db.session.execute(query).scalars() if path}


def _best_checkpoint_name(checkpoint: Path) -> str | None:
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return None
    best = state.get("best_model_checkpoint") if isinstance(state, dict) else None
    return Path(best).name if isinstance(best, str) and best else None


def run_log_path(owner_id: int, run_id: int) -> Path:
    return run_dir(owner_id, run_id) / "run.log"


def log_tail(path: Path, lines: int = 40, max_bytes: int = 32_768) -> list[str]:
    """The last `lines` lines of a run's log, reading at most `max_bytes` from its end."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(size - max_bytes, 0))
            data = handle.read()
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace").splitlines()
    if len(data) == max_bytes and size > max_bytes:
        text = text[1:]  # the first line was cut mid-way
    return text[-lines:]


def eval_items(owner_id: int, run_id: int, limit: int = 200) -> list[dict[str, Any]]:
    """What the exported model answered on each held-out row (request, expected, got, valid, correct)."""
    from app.datasets.storage import read_rows

    try:
        return list(read_rows(run_dir(owner_id, run_id) / EVAL_ITEMS_FILE, limit))
    except (OSError, ValueError):  # no file (an older run), or one cut short
        return []
