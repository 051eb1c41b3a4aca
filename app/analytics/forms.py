"""The analytics filter: a GET form (no state changes, so no CSRF token), parsed with wtforms."""

from __future__ import annotations

from datetime import date, timedelta

from wtforms import DateField, SelectField, SelectMultipleField
from wtforms.validators import Optional

from app.form_base import Form
from app.models.base import utcnow

DEFAULT_DAYS = 30
MAX_DAYS = 366


def today() -> date:
    """Today in UTC, the calendar the stored times use (`date.today()` is local: west of UTC it would
    drop this evening's messages from the default window)."""
    return utcnow().date()


class AnalyticsFilterForm(Form):
    class Meta:
        csrf = False

    start = DateField("From", validators=[Optional()])
    end = DateField("To", validators=[Optional()])
    source = SelectField("Source", validators=[Optional()], validate_choice=False)
    tag = SelectField("Session tag", validators=[Optional()], validate_choice=False)
    models = SelectMultipleField("Compare models", coerce=int, validators=[Optional()], validate_choice=False)

    def validate(self, extra_validators=None) -> bool:
        """The window's own rules, on the form: a field's check would be skipped when that field is
        left empty (`Optional` ends its chain), and either date may be."""
        if not super().validate(extra_validators):
            return False
        problem = self._window_problem()
        if problem:
            self.end.errors = [*self.end.errors, problem]
            return False
        return True

    def _window_problem(self) -> str | None:
        end = self.end.data or today()
        if end >= date.max - timedelta(days=1):  # the queries look one day past the end
            return "Pick an end date before the year 9999."
        if self.start.data is None and end < date.min + timedelta(days=DEFAULT_DAYS):
            return "Pick an end date after January 0001."
        start, end = self.date_range()
        if end < start:
            return "The end date is before the start date."
        if (end - start).days > MAX_DAYS:
            return f"Pick at most {MAX_DAYS} days."
        return None

    def date_range(self) -> tuple[date, date]:
        end = self.end.data or today()
        start = self.start.data or end - timedelta(days=DEFAULT_DAYS - 1)
        return start, end
