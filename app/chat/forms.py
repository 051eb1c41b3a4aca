"""Chat forms. Every state-changing request goes through one of these (CSRF included)."""

from __future__ import annotations

from wtforms import (
    BooleanField,
    FloatField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import AnyOf, InputRequired, Length, NumberRange, Optional, ValidationError
from wtforms.widgets import NumberInput

from app.chat.services import MAX_MESSAGE_CHARS
from app.form_base import Form
from app.form_fields import CheckboxesField, LinesField
from app.models import ChatMode
from app.serving.types import MAX_STOP_CHARS, MAX_STOP_SEQUENCES, PENALTY_RANGE

TOOL_CHOICES = [
    ("auto", "Auto: answer in words or call a tool"),
    ("required", "Required: always call a tool"),
    ("none", "None: do not offer the tools"),
]
MODES = [(ChatMode.CHAT.value, "Chat"), (ChatMode.API.value, "NL → API call")]


def _optional_int(value):
    return int(value) if value not in (None, "", "None") else None


class NewSessionForm(Form):
    model = SelectField("Model", coerce=_optional_int, validators=[InputRequired("Pick a model.")])
    mode = SelectField("Mode", choices=MODES, default=ChatMode.CHAT.value)
    spec = SelectField("Spec (NL → API mode)", coerce=_optional_int, validators=[Optional()])

    def validate(self, extra_validators=None) -> bool:
        if not super().validate(extra_validators):
            return False
        if self.mode.data == ChatMode.API and self.spec.data is None:
            self.spec.errors = ["NL → API mode needs a spec: import one on the Specs page first."]
            return False
        return True


class MessageForm(Form):
    content = TextAreaField(
        "Message",
        validators=[
            InputRequired("Type a message."),
            Length(max=MAX_MESSAGE_CHARS, message=f"At most {MAX_MESSAGE_CHARS:,} characters."),
        ],
    )


class ToolResultForm(Form):
    call_id = HiddenField(validators=[InputRequired(), Length(max=64)])
    content = TextAreaField(
        "Tool result",
        validators=[InputRequired("Type what the tool returned."), Length(max=MAX_MESSAGE_CHARS)],
    )


def _penalty_field(label: str, description: str) -> FloatField:
    """OpenAI's -2..2 penalty; left empty it is 0."""
    return FloatField(
        label,
        default=0.0,
        validators=[Optional(), NumberRange(*PENALTY_RANGE)],
        widget=NumberInput(step="0.1", min=PENALTY_RANGE[0], max=PENALTY_RANGE[1]),
        description=f"{description} Empty: 0.",
    )


class SettingsForm(Form):
    model = SelectField("Model", coerce=_optional_int, validators=[InputRequired("Pick a model.")])
    system_prompt = TextAreaField("System prompt", validators=[Optional(), Length(max=8000)])
    temperature = FloatField("Temperature", validators=[InputRequired(), NumberRange(0.0, 2.0)])
    top_p = FloatField("Top-p", validators=[InputRequired(), NumberRange(0.01, 1.0)])
    max_tokens = IntegerField("Max tokens", validators=[InputRequired(), NumberRange(1, 8192)])
    stop_sequences = LinesField(
        "Stop sequences",
        max_lines=MAX_STOP_SEQUENCES,
        max_chars=MAX_STOP_CHARS,
        description=f"One per line, at most {MAX_STOP_SEQUENCES}: the reply ends before the first written.",
    )
    frequency_penalty = _penalty_field(
        "Frequency penalty", "Above 0: fewer repeated words, the more so the more often they came up."
    )
    presence_penalty = _penalty_field("Presence penalty", "Above 0: steers away from any word already used.")
    tool_choice = SelectField("Tool choice", choices=TOOL_CHOICES)
    constrained = BooleanField(
        "Constrained tool calls (local models)",
        description="A llama.cpp grammar built from the tools' schemas: a call is valid by construction.",
    )


class ToolsForm(Form):
    source = SelectField("Source", choices=[("spec", "Operations of a spec"), ("json", "Pasted JSON")])
    spec = SelectField("Spec", coerce=_optional_int, validators=[Optional()])
    tools_json = TextAreaField(
        "Function definitions (JSON)",
        description='A list of {"name", "description", "parameters"} objects (OpenAI shape also accepted).',
        validators=[Optional()],
    )


class RenameForm(Form):
    title = StringField("Title", validators=[InputRequired("A title is required."), Length(max=120)])


class TagsForm(Form):
    tags = StringField(
        "Tags", description="Comma-separated, e.g. eval, petstore", validators=[Length(max=500)]
    )


class ActionForm(Form):
    """CSRF only: stop, delete, remove tools."""


RATINGS = {"good": 1, "bad": -1, "none": None}


class RatingForm(Form):
    """Rate a reply good or bad; "none" takes the rating back."""

    rating = StringField(validators=[InputRequired(), AnyOf(list(RATINGS))])


class ModeForm(Form):
    mode = SelectField(choices=MODES, validators=[AnyOf([m for m, _ in MODES])])


MAX_COMPARED_MODELS = 4  # each answer streams on its own connection; browsers allow six per host


class CompareForm(Form):
    """One prompt to several models, answered side by side (one chat session per model)."""

    models = CheckboxesField("Models", coerce=int)
    spec = SelectField("Tools from a spec", coerce=_optional_int, validators=[Optional()])
    tool_choice = SelectField("Tool choice", choices=TOOL_CHOICES, default="auto")
    system_prompt = TextAreaField("System prompt", validators=[Optional(), Length(max=8000)])
    temperature = FloatField(
        "Temperature",
        default=0.0,
        validators=[Optional(), NumberRange(0.0, 2.0)],
        widget=NumberInput(step="0.05", min=0, max=2),
        description="0 (greedy) compares each model's most likely answer, the same on every run.",
    )
    max_tokens = IntegerField(
        "Max tokens",
        validators=[Optional(), NumberRange(1, 8192)],
        widget=NumberInput(min=1, max=8192),
        description="Empty: each model's own default.",
    )
    content = TextAreaField(
        "Prompt",
        validators=[
            InputRequired("Type a prompt."),
            Length(max=MAX_MESSAGE_CHARS, message=f"At most {MAX_MESSAGE_CHARS:,} characters."),
        ],
    )

    def validate_models(self, field) -> None:
        if not 2 <= len(set(field.data or [])) <= MAX_COMPARED_MODELS:  # a model picked twice is one
            raise ValidationError(f"Pick two to {MAX_COMPARED_MODELS} models.")

    def validate_content(self, field) -> None:
        if not (field.data or "").strip():
            raise ValidationError("Type a prompt.")


class SaveExampleForm(Form):
    """Save a reply, as corrected, to a dataset of its kind. `dataset` is "new" or one of the user's ids."""

    kind = SelectField(
        "Save as",
        choices=[
            ("sft", "SFT row: the answer as fixed"),
            ("dpo", "Preference pair (DPO): the fixed answer chosen, the model's reply rejected"),
        ],
        default="sft",
    )
    dataset = SelectField("Dataset", choices=[], validate_choice=False)
    new_name = StringField("New dataset's name", validators=[Optional(), Length(max=100)])
    split = SelectField("Split", choices=[("train", "Train"), ("eval", "Eval (held out)")], default="train")
    content = TextAreaField("Words", validators=[Optional(), Length(max=MAX_MESSAGE_CHARS)])
    calls = TextAreaField(
        "Calls",
        validators=[Optional(), Length(max=MAX_MESSAGE_CHARS)],
        description='JSON: [{"name": ..., "arguments": {...}}]. Leave empty for an answer in words.',
    )
