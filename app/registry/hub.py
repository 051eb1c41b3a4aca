""" "Fetch model info": metadata for a Hugging Face model id from `huggingface_hub.model_info`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import current_app

TOOL_TAGS = {"function-calling", "function calling", "tool-use", "tool-calling", "tools", "agent"}


class HubLookupError(RuntimeError):
    """The Hub could not answer; the message says why in words a user can act on."""


@dataclass
class HubModelFacts:
    """What the add form can be filled with."""

    model_id: str
    name: str
    description: str
    supports_tools: bool
    context_length: int | None
    base_model: str | None
    notes: list[str] = field(default_factory=list)


def fetch_model_info(model_id: str, token: str | None) -> HubModelFacts:
    """Ask the Hub about `model_id`; raise HubLookupError with a plain reason when it cannot say."""
    import httpx2  # huggingface_hub 2.x speaks HTTP through pydantic's httpx2 fork
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
    )

    config = current_app.config
    api = HfApi(endpoint=config["HF_ENDPOINT"])
    try:
        info = api.model_info(model_id, token=token or False, timeout=config["HF_HUB_TIMEOUT_SECONDS"])
    except GatedRepoError as exc:
        raise HubLookupError(
            f"{model_id} is gated: accept its licence on the Hub and add a token that has access."
        ) from exc
    except RepositoryNotFoundError as exc:
        raise HubLookupError(
            f"The Hub has no model {model_id} (or it is private: add a token that can read it)."
        ) from exc
    except OfflineModeIsEnabled as exc:
        raise HubLookupError("Hugging Face Hub access is switched off here (HF_HUB_OFFLINE).") from exc
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        if status in (401, 403):
            raise HubLookupError(f"The Hub refused the token (HTTP {status}).") from exc
        raise HubLookupError(f"The Hub answered with an error (HTTP {status}). Try again later.") from exc
    except (httpx2.HTTPError, OSError) as exc:
        raise HubLookupError(
            f"The Hugging Face Hub ({config['HF_ENDPOINT']}) is not reachable from this server "
            f"({type(exc).__name__}). Fill in the fields by hand; chat will still need the endpoint itself."
        ) from exc
    except ValueError as exc:  # a malformed answer (a proxy's error page, …)
        raise HubLookupError(f"The Hub's answer could not be read: {exc}") from exc
    return _facts(model_id, info)


def _facts(model_id: str, info: Any) -> HubModelFacts:
    tags = [str(tag) for tag in (info.tags or [])]
    gguf = info.gguf or {}
    chat_template = gguf.get("chat_template") or _config_chat_template(info.config)
    supports_tools = bool(TOOL_TAGS.intersection(t.lower() for t in tags)) or (
        isinstance(chat_template, str) and "tools" in chat_template
    )
    card = info.card_data
    license_name = getattr(card, "license", None) if card is not None else None
    base_model = getattr(card, "base_model", None) if card is not None else None
    if isinstance(base_model, list):
        base_model = base_model[0] if base_model else None
    parameters = gguf.get("total") or (info.safetensors.total if info.safetensors else None)
    parts = [f"{info.pipeline_tag or 'model'} by {info.author or model_id.split('/')[0]}"]
    if parameters:
        parts.append(f"{_short_count(parameters)} parameters")
    if license_name:
        parts.append(f"licence {license_name}")
    if info.library_name:
        parts.append(f"library {info.library_name}")
    notes = []
    if info.pipeline_tag and info.pipeline_tag not in ("text-generation", "image-text-to-text"):
        notes.append(f"The Hub lists it as {info.pipeline_tag}, not text generation: chat may not work.")
    if info.inference_provider_mapping:
        providers = sorted(
            {m.provider for m in info.inference_provider_mapping if getattr(m, "provider", None)}
        )
        if providers:
            notes.append("Served by Inference Providers: " + ", ".join(providers) + ".")
    return HubModelFacts(
        model_id=info.id or model_id,
        name=(info.id or model_id).split("/")[-1],
        description="; ".join(parts) + ".",
        supports_tools=supports_tools,
        context_length=_int_or_none(gguf.get("context_length")),
        base_model=str(base_model) if base_model else None,
        notes=notes,
    )


def _config_chat_template(config: dict | None) -> str | None:
    tokenizer_config = (config or {}).get("tokenizer_config") or {}
    template = tokenizer_config.get("chat_template")
    if isinstance(template, list):  # several named templates
        return " ".join(str(item.get("template", "")) for item in template if isinstance(item, dict))
    return template if isinstance(template, str) else None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _short_count(count: int) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= size:
            return f"{count / size:.1f}{suffix}".replace(".0", "")
    return str(count)
