"""Form fields more than one blueprint uses."""

from __future__ import annotations

from typing import Any

from wtforms import SelectMultipleField, StringField, widgets
from wtforms.validators import DataRequired, Length, Regexp


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
