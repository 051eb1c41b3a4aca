"""Which folders under MODEL_STORE a user may train from: the one rule the linter and the jobs share."""

from __future__ import annotations

from pathlib import Path

# Areas of the model store that belong to one user: `runs/<owner id>/...` and the GGUF uploads.
# Areas a user cannot name as a base model folder: other users' runs and uploads, and the Hub cache
# (reached by Hub id, through the owner's own token: a cache path would skip that check).
PRIVATE_STORE_AREAS = ("runs", "uploads", ".incoming", "hub")


def model_folder(store: str | Path, name: str, owner_id: int | None) -> Path | None:
    """The Hugging Face model folder `name` names under the model store, when `owner_id` may train from
    it: anything an admin put there, or the merged model of one of the user's own runs. Never a path
    outside the store, and never another user's run: a run's folder holds its trained weights."""
    name = name.strip()
    if not name or "\x00" in name:
        return None
    try:
        store = Path(store).resolve()
        folder = (store / name).resolve()
        if folder == store or not folder.is_relative_to(store):
            return None
        area, *rest = folder.relative_to(store).parts
        if area in PRIVATE_STORE_AREAS and not (area == "runs" and rest and rest[0] == str(owner_id)):
            return None
        return folder if (folder / "config.json").is_file() else None
    # A name no file system holds (a part over 255 bytes, a lone surrogate), or a symlink loop under the
    # store (RuntimeError from `resolve` on Python 3.11, OSError on 3.13).
    except (OSError, ValueError, RuntimeError):
        return None
