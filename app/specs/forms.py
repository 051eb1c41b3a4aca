"""Spec import: a file or pasted text, and an optional name (versions group under one name)."""

from __future__ import annotations

from flask_wtf.file import FileField
from wtforms import StringField, TextAreaField
from wtforms.validators import Length, Optional

from app.form_base import Form


class SpecImportForm(Form):
    name = StringField(
        "Name",
        validators=[Optional(), Length(max=120)],
        description="Defaults to the spec's title. The same name again adds a new version.",
    )
    file = FileField("OpenAPI file (JSON or YAML)")
    text = TextAreaField("…or paste it", validators=[Optional()])


class SpecActionForm(Form):
    """CSRF only (delete)."""
