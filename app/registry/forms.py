"""Model registry forms: add / edit a model, import a GGUF, fetch Hub info, row actions."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import AnyOf, InputRequired, Length, NumberRange, Optional, ValidationError

from app.form_base import Form
from app.json_input import loads as loads_json
from app.json_input import nesting_depth
from app.models import Provider
from app.registry.providers import PROVIDER_TEMPLATES

JSON_FIELD_MAX = 20_000
JSON_FIELD_MAX_DEPTH = 32
# Hub ids (`owner/name`), OpenAI names (`gpt-4o-mini`), Ollama tags (`llama3.2:1b`), provider suffixes.
MODEL_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")
TRAINING_METHODS = [("", "—"), ("sft", "SFT"), ("dpo", "DPO"), ("other", "Other")]


def strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def _json_object(field) -> None:
    """An optional JSON object typed into a text area; parsed into `field.parsed`."""
    field.parsed = None
    text = (field.data or "").strip()
    if not text:
        return
    if len(text) > JSON_FIELD_MAX:
        raise ValidationError(f"At most {JSON_FIELD_MAX:,} characters.")
    try:
        value = loads_json(text, text_only=True)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from exc
    except ValueError as exc:
        raise ValidationError(f"Not valid JSON: {exc}.") from exc
    if not isinstance(value, dict):
        raise ValidationError('Enter a JSON object, like {"r": 16, "alpha": 32}.')
    if nesting_depth(value) > JSON_FIELD_MAX_DEPTH:  # deeper breaks storing it (a RecursionError)
        raise ValidationError(f"Nested at most {JSON_FIELD_MAX_DEPTH} levels deep.")
    field.parsed = value


class ModelForm(Form):
    """Every editable field of a registered model; which ones show depends on the provider.

    Conditionally required fields carry no `Optional()`: it would stop the chain before `validate_<field>`.
    """

    provider = SelectField(
        "Provider",
        choices=[(key, template.label) for key, template in PROVIDER_TEMPLATES.items()],
        # No InputRequired: the edit view sets the provider itself (it never changes after creation).
        validators=[AnyOf([p.value for p in Provider], message="Unknown provider.")],
    )
    name = StringField("Name", validators=[Length(max=120)], filters=[strip])
    description = TextAreaField("Description", validators=[Optional(), Length(max=4000)], filters=[strip])
    base_url = StringField("Base URL", validators=[Length(max=500)], filters=[strip])
    model_id = StringField("Model id", validators=[Length(max=300)], filters=[strip])
    api_key = PasswordField(
        "API key",
        validators=[Optional(), Length(max=1000)],
        filters=[strip],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    clear_api_key = BooleanField("Remove the stored key")
    supports_streaming = BooleanField("Supports streaming", default=True)
    supports_tools = BooleanField("Supports tool calling")
    context_length = IntegerField(
        "Context length (tokens)", validators=[Optional(), NumberRange(min=1, max=10_000_000)]
    )
    max_tokens = IntegerField(
        "Max new tokens per reply", default=512, validators=[InputRequired(), NumberRange(min=1, max=131_072)]
    )
    enabled = BooleanField("Enabled", default=True)
    shared = BooleanField(
        "Global: every user can use it (admins only)",
        description="Global models are managed by admins; users see them next to their own.",
    )

    # Training provenance: filled by the training pipeline, editable for imported models.
    training_method = SelectField("Training method", choices=TRAINING_METHODS, validators=[Optional()])
    base_model = StringField("Base model", validators=[Optional(), Length(max=300)], filters=[strip])
    training_dataset = StringField(
        "Training dataset", validators=[Optional(), Length(max=300)], filters=[strip]
    )
    training_date = DateField("Training date", validators=[Optional()])
    lora_config = TextAreaField("LoRA config (JSON)", validators=[Optional()])
    evaluation_metrics = TextAreaField("Evaluation metrics (JSON)", validators=[Optional()])

    # Local GGUF only (add form): an upload, or for admins a path already under MODEL_STORE.
    gguf_file = FileField("GGUF file")
    gguf_server_path = StringField(
        "…or a path under the model store (admins)",
        validators=[Optional(), Length(max=1000)],
        filters=[strip],
    )

    editing = False  # an existing model: it keeps a name (only a new GGUF is named after its file)

    def validate_name(self, field) -> None:
        if not field.data and (self.editing or self.provider.data != Provider.LOCAL_GGUF):
            raise ValidationError("Give the model a name.")

    def validate_base_url(self, field) -> None:
        if not field.data:
            if self.provider.data == Provider.OPENAI_COMPATIBLE:
                raise ValidationError("Enter the server's base URL, like https://api.openai.com/v1.")
            return
        try:
            parts = urlsplit(field.data)
            parts.port  # noqa: B018  (raises for a port that is not a number)
        except ValueError:  # "http://[::1", "http://h:99999"
            raise ValidationError("Enter a valid http:// or https:// URL.") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError("Enter an http:// or https:// URL with a host name.")
        if parts.username or parts.password:
            raise ValidationError("Put credentials in the API key field, not in the URL.")

    def validate_model_id(self, field) -> None:
        if not field.data:
            if self.provider.data in (Provider.OPENAI_COMPATIBLE, Provider.HF_INFERENCE):
                raise ValidationError("Enter the model id the server knows the model by.")
            return
        if not MODEL_ID_PATTERN.match(field.data):
            raise ValidationError("Use letters, digits and . _ - : / @ + only, with no spaces.")

    def validate_lora_config(self, field) -> None:
        _json_object(field)

    def validate_evaluation_metrics(self, field) -> None:
        _json_object(field)

    def json_value(self, name: str) -> dict[str, Any] | None:
        return getattr(self[name], "parsed", None)


class HubInfoForm(Form):
    """ "Fetch model info": a Hub model id and an optional token (not stored by this form)."""

    model_id = StringField("Model id", validators=[InputRequired(), Length(max=300)], filters=[strip])
    api_key = PasswordField("Token", validators=[Optional(), Length(max=1000)], filters=[strip])

    def validate_model_id(self, field) -> None:
        if not MODEL_ID_PATTERN.match(field.data or "") or field.data.count("/") > 1:
            raise ValidationError("A Hub model id looks like username/model-name.")


class ModelActionForm(Form):
    """Enable, disable, test or delete: a POST with the CSRF token."""

    action = HiddenField(validators=[Optional()])


class TryPromptForm(Form):
    """One prompt sent to a model from its page, to see it answer."""

    prompt = TextAreaField("Prompt", validators=[InputRequired(), Length(max=8000)], filters=[strip])
    temperature = SelectField(
        "Temperature", choices=[("0", "0 (greedy)"), ("0.7", "0.7"), ("1.0", "1.0")], default="0"
    )
