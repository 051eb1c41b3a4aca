"""The "New evaluation" form: what to ask (a dataset or BFCL categories) and which models answer."""

from __future__ import annotations

from wtforms import BooleanField, IntegerField, RadioField, SelectField
from wtforms.validators import DataRequired, InputRequired, NumberRange, Optional, ValidationError

from app.evaluations.bfcl import CATEGORIES
from app.form_base import Form
from app.form_fields import CheckboxesField
from app.models import Benchmark

MAX_MODELS = 6
MAX_CASES = 400  # per BFCL category (the largest category has 400); per dataset


class EvaluationForm(Form):
    benchmark = RadioField(
        "Cases",
        choices=[
            (Benchmark.DATASET.value, "A dataset's held-out rows"),
            (Benchmark.BFCL.value, "BFCL (Berkeley Function Calling Leaderboard)"),
        ],
        default=Benchmark.DATASET.value,
        validators=[DataRequired(message="Pick where the cases come from.")],
    )
    dataset_id = SelectField(
        "Dataset",
        coerce=int,
        validators=[Optional()],
        description="Its eval split (every row when it holds none out). Rows the model never trained on.",
    )
    categories = CheckboxesField(
        "BFCL categories",
        choices=list(CATEGORIES.items()),
        default=["simple_python", "multiple", "irrelevance"],
        description="Irrelevance: no offered function fits, the right answer is no call.",
    )
    cases = IntegerField(
        "Cases",
        default=20,
        validators=[InputRequired(), NumberRange(1, MAX_CASES)],
        description=f"Per BFCL category, or from the dataset; 1 to {MAX_CASES}, spread evenly across the "
        "set. The 135M model answers about one case a second on two cores.",
    )
    model_ids = CheckboxesField("Models", coerce=int)
    constrained = BooleanField(
        "Constrained tool calls (local models)",
        description="Decode local models with the tools' grammar, as the chat's switch does. It allows one "
        "call per reply, so parallel cases cannot pass.",
    )

    def validate_model_ids(self, field) -> None:
        if not field.data:
            raise ValidationError("Pick at least one model.")
        if len(field.data) > MAX_MODELS:
            raise ValidationError(f"Pick at most {MAX_MODELS} models.")

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        # Which of the two sources is required depends on the choice, so it is checked here.
        if self.benchmark.data == Benchmark.DATASET.value and not self.dataset_id.data:
            self.dataset_id.errors = [*self.dataset_id.errors, "Pick a dataset."]
            valid = False
        if self.benchmark.data == Benchmark.BFCL.value and not self.categories.data:
            self.categories.errors = [*self.categories.errors, "Pick at least one category."]
            valid = False
        return valid


class EvaluationActionForm(Form):
    """CSRF only: cancel and delete."""
