"""The analytics filter: a GET form (no state changes, so no CSRF token), parsed with wtforms."""

from __future__ import annotations

from datetime import date, timedelta

from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, SelectMultipleField
from wtforms.validators import Optional, ValidationError

from app.models.base import utcnow

DEFAULT_DAYS = 30
MAX_DAYS = 366


def today() -> date:
    """Today in UTC, the calendar the stored times use (`date.today()` is local: west of UTC it would
    drop this evening's messages from the default window)."""
    return utcnow().date()


class AnalyticsFilterForm(FlaskForm):
    class Meta:
        csrf = False

    start = DateField("From", validators=[Optional()])
    end = DateField("To", validators=[Optional()])
    source = SelectField("Source", validators=[Optional()], validate_choice=False)
    tag = SelectField("Session tag", validators=[Optional()], validate_choice=False)
    models = SelectMultipleField("Compare models", coerce=int, validators=[Optional()], validate_choice=False)

    def validate_end(self, field) -> None:
        start, end = self.date_range()
        if end < start:
            raise ValidationError("The end date is before the start date.")
        if (end - start).days > MAX_DAYS:
            raise ValidationError(f"Pick at most {MAX_DAYS} days.")
        if end >= date.max - timedelta(days=1):  # the queries look one day past the end
            raise ValidationError("Pick an end date before the year 9999.")

    def date_range(self) -> tuple[date, date]:
        end = self.end.data or today()
        start = self.start.data or end - timedelta(days=DEFAULT_DAYS - 1)
        return start, end
