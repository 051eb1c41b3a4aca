"""Start a run (which saved config, which dataset), act on it, push it to the Hub."""

from __future__ import annotations

from wtforms import BooleanField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from app.form_base import Form
from app.form_fields import hub_repo_id_field


class StartRunForm(Form):
    config_id = SelectField("Config", coerce=int, validators=[DataRequired(message="Pick a config.")])
    dataset_id = SelectField("Dataset", coerce=int, validators=[DataRequired(message="Pick a dataset.")])
    name = StringField("Run name", validators=[Optional(), Length(max=120)])
    # A sweep: values to try instead of the config's, one run per combination (app/training/sweeps.py).
    sweep_learning_rates = StringField(
        "Learning rates", validators=[Optional(), Length(max=200)], description="e.g. 1e-4, 2e-4, 5e-4"
    )
    sweep_lora_ranks = StringField(
        "LoRA ranks", validators=[Optional(), Length(max=200)], description="e.g. 8, 16"
    )
    sweep_epochs = StringField("Epochs", validators=[Optional(), Length(max=200)], description="e.g. 1, 2, 3")

    def sweep_texts(self) -> dict[str, str]:
        """{dotted config key: the values typed} for the sweep's axes."""
        return {
            "training.learning_rate": self.sweep_learning_rates.data or "",
            "training.lora_r": self.sweep_lora_ranks.data or "",
            "training.num_epochs": self.sweep_epochs.data or "",
        }


class RunActionForm(Form):
    """CSRF only (cancel, resume, retry, delete)."""


class PushForm(Form):
    """Push a finished run to the Hugging Face Hub."""

    repo_id = hub_repo_id_field(
        "Repository",
        missing="Name the repository (owner/name).",
        invalid="A Hub repository id looks like owner/name.",
    )
    private = BooleanField("Private", default=True)
