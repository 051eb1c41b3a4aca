"""Form fields more than one blueprint uses."""

from __future__ import annotations

from typing import Any

from wtforms import SelectMultipleField, StringField, TextAreaField, widgets
from wtforms.validators import DataRequired, Length, Regexp, ValidationError


class CheckboxesField(SelectMultipleField):
    """A multiple choice shown as a list of checkboxes."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def hub_repo_id_field(label: str, missing: str, invalid: str, **kwargs: Any) -> StringField:
    """A Hugging Face Hub repo id (owner/name): trimmed, required, in the Hub's own shape."""
    from app.configs.linter import HUB_REPO_ID

    return StringField(
        label,
        filters=[_strip],
        validators=[
            DataRequired(message=missing),
            Length(max=193),
            Regexp(HUB_REPO_ID.pattern + r"\Z", message=invalid),
        ],
        **kwargs,
    )


class LinesField(TextAreaField):
    """A list of strings, one per line (blank lines dropped); `max_lines` and `max_chars` each bound it."""

    def __init__(self, label: str, max_lines: int, max_chars: int, **kwargs: Any):
        super().__init__(label, **kwargs)
        self.max_lines, self.max_chars = max_lines, max_chars

    def process_formdata(self, valuelist: list[Any]) -> None:
        text = valuelist[0] if valuelist and isinstance(valuelist[0], str) else ""
        self.data = [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()]

    def _value(self) -> str:
        return "\n".join(self.data or [])

    def pre_validate(self, form: Any) -> None:
        lines = self.data or []
        if len(lines) > self.max_lines:
            raise ValidationError(f"At most {self.max_lines} lines.")
        if any(len(line) > self.max_chars for line in lines):
            raise ValidationError(f"Each line at most {self.max_chars} characters.")
