"""Dataset upload and generation forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, FloatField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

MAX_SAMPLES_PER_OPERATION = 1000


class DatasetUploadForm(FlaskForm):
    file = FileField("Dataset file")
    name = StringField(
        "Name", validators=[Optional(), Length(max=100)], description="Defaults to the file name."
    )


class GenerateForm(FlaskForm):
    spec_id = SelectField("OpenAPI spec", coerce=int, validators=[DataRequired(message="Pick a spec.")])
    name = StringField(
        "Name", validators=[Optional(), Length(max=100)], description="Defaults to the spec's name."
    )
    samples_per_operation = IntegerField(
        "Examples per operation",
        default=20,
        validators=[DataRequired(), NumberRange(1, MAX_SAMPLES_PER_OPERATION)],
        description=f"1 to {MAX_SAMPLES_PER_OPERATION}. Varied phrasings and values for each operation.",
    )
    seed = IntegerField(
        "Seed",
        default=0,
        validators=[Optional(), NumberRange(0, 2**31 - 1)],
        description="The same seed gives the same dataset.",
    )
    eval_fraction = FloatField(
        "Eval share",
        default=0.1,
        validators=[Optional(), NumberRange(0.0, 0.5)],
        description="Held out with phrasings and values the training rows never show (0 to 0.5).",
    )
    tools_per_row = IntegerField(
        "Tools offered per request",
        default=0,
        validators=[Optional(), NumberRange(0, 128)],
        description="0 = all the spec's operations (as NL → API mode offers them). A few (the right one "
        "plus others) make rows far shorter: much faster training on a CPU.",
    )
    include_irrelevant = BooleanField(
        "Include requests no operation fits",
        default=True,
        description="The right answer to those is no call.",
    )
    dpo = BooleanField(
        "Preference pairs (DPO)", description="Chosen = the correct call; rejected = a plausible wrong one."
    )


class DatasetActionForm(FlaskForm):
    """CSRF only (delete)."""
