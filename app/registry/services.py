"""Model registry rules: listing, saving from the form, deleting, connection tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask_login import current_user

from app.extensions import db
from app.models import LLMModel, Provider, User, utcnow
from app.ownership import visible
from app.registry.forms import ModelForm
from app.registry.gguf_store import remove_managed_file
from app.serving.gguf_info import GGUFInfo

OWNER_FILTERS = {"all": "Everyone's I can use", "mine": "Mine", "global": "Global"}


@dataclass(frozen=True)
class ModelFilters:
    query: str = ""
    provider: str = ""
    owner: str = "all"

    @classmethod
    def from_args(cls, args) -> ModelFilters:
        provider = args.get("provider", "")
        owner = args.get("owner", "all")
        return cls(
            query=(args.get("q") or "").strip()[:200],
            provider=provider if provider in {p.value for p in Provider} else "",
            owner=owner if owner in OWNER_FILTERS else "all",
        )


def list_models(filters: ModelFilters) -> list[LLMModel]:
    """Models the current user can use, filtered by name, provider and owner; global ones first."""
    query = visible(LLMModel)
    if filters.query:
        pattern = "%" + filters.query.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
        query = query.where(
            sa.or_(
                LLMModel.name.ilike(pattern, escape="\\"),
                LLMModel.model_id.ilike(pattern, escape="\\"),
                LLMModel.description.ilike(pattern, escape="\\"),
            )
        )
    if filters.provider:
        query = query.where(LLMModel.provider == filters.provider)
    if filters.owner == "mine":
        query = query.where(LLMModel.owner_id == current_user.id)
    elif filters.owner == "global":
        query = query.where(LLMModel.owner_id.is_(None))
    query = query.order_by(LLMModel.owner_id.is_not(None), sa.func.lower(LLMModel.name), LLMModel.id)
    return list(db.session.execute(query).scalars())


def can_manage(model: LLMModel, user: User | None = None) -> bool:
    user = user or current_user
    return model.owner_id == user.id or (model.owner_id is None and user.is_admin)


def shown_base_url(model: LLMModel, user: User | None = None) -> str | None:
    """The endpoint address as this user may read it: whole for whoever manages the model, only its
    origin (scheme, host, port) on another's global model, because the path or query an admin typed
    (a deployment name, a key some gateways take as `?key=`) is not every user's to read."""
    if not model.base_url or can_manage(model, user):
        return model.base_url
    try:
        parts = urlsplit(model.base_url)
        host = parts.netloc.rpartition("@")[2]  # credentials are refused on save; older rows, too
        return f"{parts.scheme}://{host}" if parts.scheme and host else None
    except ValueError:
        return None


def endpoint_address_error(url: str | None, allow_private: bool) -> str | None:
    """Why a base URL may not be saved (a refused address), or None. Unresolvable hosts are allowed:
    DNS may differ where the model is used, and "Test connection" reports it clearly."""
    from app.serving import ServingError
    from app.serving.url_guard import BlockedAddressError, check_url

    if not url:
        return None
    try:
        check_url(url, allow_private=allow_private)
    except BlockedAddressError as exc:
        return str(exc)
    except ServingError:  # an unresolvable host is for "Test connection" to report
        pass
    return None


def apply_form(model: LLMModel, form: ModelForm, user: User) -> bool:
    """Copy the form onto the row (the caller commits). An empty key field keeps the stored key, unless
    the address moved to another host: a key is sent only where it was typed for (whoever edits a shared
    model's address must not receive the key another admin entered). True when a key was dropped so."""
    dropped_key = False
    model.name = form.name.data
    model.description = form.description.data or ""
    model.supports_streaming = form.supports_streaming.data
    model.supports_tools = form.supports_tools.data
    model.context_length = form.context_length.data
    model.max_tokens = form.max_tokens.data
    model.enabled = form.enabled.data
    if model.provider != Provider.LOCAL_GGUF:
        changed_target = (model.base_url, model.model_id) != (form.base_url.data or None, form.model_id.data)
        moved = model.id is not None and _origin(model.base_url) != _origin(form.base_url.data or None)
        model.base_url = form.base_url.data or None
        model.model_id = form.model_id.data
        if changed_target:
            model.last_test_ok = model.last_test_message = model.last_tested_at = None
        if form.clear_api_key.data:
            model.set_api_key(None)
        elif form.api_key.data:
            model.set_api_key(form.api_key.data)
        elif moved and model.has_api_key:
            model.set_api_key(None)
            dropped_key = True
    model.training_method = form.training_method.data or None
    model.base_model = form.base_model.data or None
    model.training_dataset = form.training_dataset.data or None
    date = form.training_date.data
    model.training_date = datetime(date.year, date.month, date.day) if date else None
    model.lora_config = form.json_value("lora_config")
    model.evaluation_metrics = form.json_value("evaluation_metrics")
    if user.is_admin and model.id is None:
        model.owner_id = None if form.shared.data else user.id
    return dropped_key


def _origin(url: str | None) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of an endpoint address; None for the provider's default (no URL)."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port
    except ValueError:
        return url, "", None  # an address that does not parse is its own origin


def new_model(form: ModelForm, user: User) -> LLMModel:
    model = LLMModel(owner_id=user.id, provider=form.provider.data)
    apply_form(model, form, user)
    return model


def fill_from_gguf(model: LLMModel, path: Path, info: GGUFInfo) -> None:
    model.gguf_path = str(path)
    model.architecture = info.architecture
    model.parameter_count = info.parameter_count
    model.quantization = info.quantization
    model.file_size = info.file_size
    model.has_chat_template = info.has_chat_template
    if model.context_length is None:
        model.context_length = info.context_length


def delete_model(model: LLMModel) -> None:
    """Delete the row, then the file Toolsmith stored for it (a registered path is left in place)."""
    path = model.gguf_path
    from app.serving import local_models

    if path:
        local_models().unload(path)
    db.session.delete(model)
    db.session.commit()
    remove_managed_file(path)


def record_connection_test(model: LLMModel) -> None:
    """Run "Test connection" and store the outcome on the row."""
    from app.serving import check_connection

    outcome = check_connection(model)
    model.last_test_ok = outcome.ok
    model.last_test_message = outcome.message[:500]
    model.last_tested_at = utcnow()
    db.session.commit()


def is_loaded(model: LLMModel) -> bool:
    """Whether this server process holds the model in memory (each web process has its own cache)."""
    from app.serving import local_models

    return bool(model.gguf_path) and local_models().is_loaded(model.gguf_path)


def host_of(url: str | None) -> str:
    return urlsplit(url).netloc if url else ""
