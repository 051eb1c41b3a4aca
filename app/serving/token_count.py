"""Token counts for providers that report no usage: the default model's real tokenizer, vocab only.

A remote model's own tokenizer is not available offline, so its count is an estimate either way; a real
BPE tokenizer is a far better estimate than characters / 4, and loading only the vocabulary is cheap.
"""

from __future__ import annotations

import atexit
import threading
from functools import lru_cache
from typing import Any

_lock = threading.Lock()


@lru_cache(maxsize=1)
def _vocab() -> Any:
    from llama_cpp import Llama

    from app.serving.default_model import default_gguf_path

    vocab = Llama(model_path=str(default_gguf_path()), vocab_only=True, verbose=False)
    # Freed before the interpreter's teardown, which would run `Llama.__del__` after llama_cpp is gone.
    atexit.register(vocab.close)
    return vocab


def count_tokens(text: str, special: bool = False) -> int | None:
    """Tokens in `text`, or None when no tokenizer can be loaded; `special` reads control tokens such as
    `<|im_start|>` as the one token each they are (in text a chat template rendered)."""
    if not text:
        return 0
    try:
        with _lock:
            return len(_vocab().tokenize(text.encode(), add_bos=False, special=special))
    except (OSError, ValueError, RuntimeError, ImportError):
        return None
