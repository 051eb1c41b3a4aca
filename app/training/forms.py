"""Start a run: which saved config, which dataset."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional


class StartRunForm(FlaskForm):
    config_id = SelectField("Config", coerce=int, validators=[DataRequired(message="Pick a config.")])
    dataset_id = SelectField("Dataset", coerce=int, validators=[DataRequired(message="Pick a dataset.")])
    name = StringField("Run name", validators=[Optional(), Length(max=120)])


class RunActionForm(FlaskForm):
    """CSRF only (cancel, resume, retry, delete)."""
