"""Dataset upload and generation forms."""

from __future__ import annotations

from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    FloatField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from app.form_base import Form
from app.form_fields import CheckboxesField, hub_repo_id_field

MAX_SAMPLES_PER_OPERATION = 1000


class DatasetUploadForm(Form):
    file = FileField("Dataset file")
    name = StringField(
        "Name", validators=[Optional(), Length(max=100)], description="Defaults to the file name."
    )


class HubImportForm(Form):
    """A dataset repo on the Hugging Face Hub, read in the background."""

    repo_id = hub_repo_id_field(
        "Hub dataset",
        missing="Name the dataset repo (owner/name).",
        invalid="A Hub dataset id looks like owner/name.",
        description="e.g. Salesforce/xlam-function-calling-60k",
    )
    path = StringField(
        "File or folder",
        filters=[lambda value: value.strip().strip("/") if isinstance(value, str) else value],
        validators=[
            Optional(),
            Length(max=300),
            Regexp(
                r"(?!.*(?:^|/)\.\.(?:/|\Z))[^\x00-\x1f\\]+\Z",
                message="A path inside the repo, such as data/train.jsonl.",
            ),
        ],
        description="Empty: every .jsonl / .json / .parquet file (test / validation files held out).",
    )
    revision = StringField(
        "Revision",
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
        validators=[
            Optional(),
            Length(max=100),
            Regexp(r"[A-Za-z0-9][A-Za-z0-9._/-]*\Z", message="A branch, tag or commit id."),
        ],
        description="Empty: main.",
    )
    name = StringField(
        "Name", validators=[Optional(), Length(max=100)], description="Defaults to the repo's name."
    )


class GenerateForm(Form):
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


class DatasetActionForm(Form):
    """CSRF only (delete)."""


class RowEditForm(Form):
    """Delete a row or move it between splits. The row is named by number (in the URL) and digest; the
    browsing state (search, filters, page) rides along so the user lands where they were."""

    digest = HiddenField(validators=[DataRequired(), Length(max=64)])
    to_split = SelectField(choices=[("train", "train"), ("eval", "eval")], validate_choice=False)
    q = HiddenField(validators=[Optional(), Length(max=400)])
    split = HiddenField(validators=[Optional(), Length(max=8)])
    call = HiddenField(validators=[Optional(), Length(max=200)])
    page = HiddenField(validators=[Optional(), Length(max=12)])
    longer = HiddenField(validators=[Optional(), Length(max=8)])

    def view_args(self) -> dict[str, str]:
        """The browsing state as URL arguments, empty ones left out."""
        args = {
            "q": self.q.data,
            "split": self.split.data,
            "call": self.call.data,
            "longer": self.longer.data,
            "page": self.page.data,
        }
        return {key: value for key, value in args.items() if value}


MAX_ROW_JSON = 256 * 1024


class RowJSONForm(RowEditForm):
    """Replace a row with the JSON typed in its editor."""

    row_json = TextAreaField(
        "Row (JSON)",
        validators=[
            DataRequired("The row is empty."),
            Length(max=MAX_ROW_JSON, message="The row is over 256 KiB."),
        ],
    )


class CombineForm(Form):
    """Several of the user's datasets of one kind → one new dataset."""

    datasets = CheckboxesField("Datasets", coerce=int)
    name = StringField("Name", validators=[DataRequired("Name the new dataset."), Length(max=100)])
    drop_duplicates = BooleanField(
        "Drop duplicate rows",
        default=True,
        description="Rows that are the same (split and meta aside) are kept once.",
    )
    resplit = BooleanField(
        "Draw the eval split again", description="Otherwise each row keeps the split it had in its dataset."
    )
    eval_fraction = FloatField("Eval share", default=0.1, validators=[Optional(), NumberRange(0.0, 0.5)])
    seed = IntegerField("Seed", default=0, validators=[Optional(), NumberRange(0, 2**31 - 1)])


class SplitForm(Form):
    """Draw the eval split of a dataset again."""

    eval_fraction = FloatField(
        "Eval share", default=0.1, validators=[DataRequired("Give a share."), NumberRange(0.01, 0.5)]
    )
    seed = IntegerField("Seed", default=0, validators=[Optional(), NumberRange(0, 2**31 - 1)])
