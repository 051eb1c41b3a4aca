"""Read what a GGUF file says about itself (architecture, size, quantization, chat template)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from app.serving.gguf_header import GGUFHeaderError, NotGGUFError, read_gguf_header

MAX_ARCHITECTURE_CHARS = 64  # LLMModel.architecture
MAX_CONTEXT_LENGTH = 2**31 - 1  # LLMModel.context_length, an INTEGER
MAX_PARAMETERS = 2**63 - 1  # LLMModel.parameter_count, a BIGINT


class GGUFError(ValueError):
    """The file is not a readable GGUF model."""


@dataclass(frozen=True)
class GGUFInfo:
    architecture: str | None
    parameter_count: int
    quantization: str | None
    context_length: int | None
    has_chat_template: bool
    file_size: int


def read_gguf_info(path: str | Path) -> GGUFInfo:
    """Read the header (`gguf_header`, weights untouched); a non-GGUF or truncated file raises GGUFError.

    A result is remembered for as long as the file is unchanged (same inode, size and mtime)."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise GGUFError(f"{path.name} cannot be read: {exc.strerror or exc}") from exc
    return _read_unchanged(str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _read_unchanged(resolved: str, _inode: int, _size: int, _mtime_ns: int) -> GGUFInfo:
    import gguf

    path = Path(resolved)
    try:
        header = read_gguf_header(path)
    except NotGGUFError:
        message = f"{path.name} is not a GGUF file (it does not start with the GGUF magic bytes)."
        raise GGUFError(message) from None
    except GGUFHeaderError as exc:
        raise GGUFError(f"{path.name} is damaged or truncated: {exc}") from exc
    except OSError as exc:
        raise GGUFError(f"{path.name} cannot be read: {exc.strerror or exc}") from exc
    metadata = header.metadata
    architecture = _text(metadata.get("general.architecture"))
    file_type = metadata.get("general.file_type")
    try:
        quantization = (
            gguf.LlamaFileType(file_type).name.removeprefix("MOSTLY_") if isinstance(file_type, int) else None
        )
    except ValueError:
        quantization = None
    context_length = metadata.get(f"{architecture}.context_length") if architecture else None
    if not 0 <= header.parameter_count <= MAX_PARAMETERS:
        raise GGUFError(f"{path.name} is damaged: its tensors claim {header.parameter_count} parameters.")
    return GGUFInfo(
        # What the registry stores, in its columns' ranges: a hostile header is shown as unknown.
        architecture=architecture[:MAX_ARCHITECTURE_CHARS] if architecture else None,
        parameter_count=header.parameter_count,
        quantization=quantization,
        context_length=(
            context_length
            if isinstance(context_length, int) and 0 < context_length <= MAX_CONTEXT_LENGTH
            else None
        ),
        has_chat_template="tokenizer.chat_template" in metadata,
        file_size=path.stat().st_size,
    )


def _text(value) -> str | None:
    return value if isinstance(value, str) else None
