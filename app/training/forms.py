"""Start a run (which saved config, which dataset), act on it, push it to the Hub."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from app.configs.linter import HUB_REPO_ID


class StartRunForm(FlaskForm):
    config_id = SelectField("Config", coerce=int, validators=[DataRequired(message="Pick a config.")])
    dataset_id = SelectField("Dataset", coerce=int, validators=[DataRequired(message="Pick a dataset.")])
    name = StringField("Run name", validators=[Optional(), Length(max=120)])


class RunActionForm(FlaskForm):
    """CSRF only (cancel, resume, retry, delete)."""


class PushForm(FlaskForm):
    """Push a finished run to the Hugging Face Hub."""

    repo_id = StringField(
        "Repository",
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
        validators=[
            DataRequired(message="Name the repository (owner/name)."),
            Length(max=193),
            Regexp(HUB_REPO_ID.pattern + r"\Z", message="A Hub repository id looks like owner/name."),
        ],
    )
    private = BooleanField("Private", default=True)
