"""Account forms."""

from __future__ import annotations

import sqlalchemy as sa
from wtforms import BooleanField, EmailField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, EqualTo, InputRequired, Length, ValidationError

from app.extensions import db
from app.form_base import Form
from app.models import User

PASSWORD_MIN, PASSWORD_MAX = 8, 256


def normalise_email(value: str | None) -> str:
    return (value or "").strip().lower()


class LoginForm(Form):
    email = EmailField(
        "Email",
        validators=[InputRequired(), Length(max=254)],
        filters=[normalise_email],
        render_kw={"autocomplete": "username"},
    )
    password = PasswordField(
        "Password",
        validators=[InputRequired(), Length(max=PASSWORD_MAX)],
        render_kw={"autocomplete": "current-password"},
    )
    remember = BooleanField("Keep me signed in")
    submit = SubmitField("Sign in")


class RegisterForm(Form):
    email = EmailField(
        "Email",
        validators=[InputRequired(), Length(max=254), Email(check_deliverability=False)],
        filters=[normalise_email],
        render_kw={"autocomplete": "username"},
    )
    password = PasswordField(
        "Password",
        validators=[InputRequired(), Length(min=PASSWORD_MIN, max=PASSWORD_MAX)],
        description=f"At least {PASSWORD_MIN} characters.",
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "Repeat password",
        validators=[InputRequired(), EqualTo("password", message="Passwords do not match.")],
        render_kw={"autocomplete": "new-password"},
    )
    submit = SubmitField("Create account")

    def validate_email(self, field) -> None:
        taken = db.session.execute(sa.select(User.id).where(User.email == field.data)).first()
        if taken:
            raise ValidationError("An account with this email already exists.")


class ChangePasswordForm(Form):
    current_password = PasswordField(
        "Current password",
        validators=[InputRequired(), Length(max=PASSWORD_MAX)],
        render_kw={"autocomplete": "current-password"},
    )
    new_password = PasswordField(
        "New password",
        validators=[InputRequired(), Length(min=PASSWORD_MIN, max=PASSWORD_MAX)],
        description=f"At least {PASSWORD_MIN} characters. Other signed-in sessions are signed out.",
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "Repeat new password",
        validators=[InputRequired(), EqualTo("new_password", message="Passwords do not match.")],
        render_kw={"autocomplete": "new-password"},
    )
    submit = SubmitField("Change password")


class HubTokenForm(Form):
    """Save (or remove) the Hugging Face token used to push trained models; it is never shown again."""

    token = PasswordField(
        "Hugging Face token",
        validators=[Length(max=200)],
        filters=[lambda value: (value or "").strip()],
        render_kw={"autocomplete": "off", "placeholder": "hf_…"},
    )
    remove = SubmitField("Remove the token")

    def validate_token(self, field) -> None:
        if self.remove.data:
            return
        value = field.data or ""
        if not value:
            raise ValidationError("Paste a token, or press Remove.")
        if not value.startswith("hf_") or len(value) < 20 or any(c.isspace() for c in value):
            raise ValidationError("A Hugging Face token starts with hf_ (create one with write access).")


class ApiTokenForm(Form):
    """Create a token for the OpenAI-compatible API; its value is shown once."""

    name = StringField(
        "Token name",
        validators=[DataRequired(message="Name the token (where it will be used)."), Length(max=80)],
        filters=[lambda value: (value or "").strip()],
        render_kw={"placeholder": "my laptop", "autocomplete": "off"},
    )


class RevokeApiTokenForm(Form):
    """CSRF only."""
