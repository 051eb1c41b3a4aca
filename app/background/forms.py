"""Job forms (CSRF-carrying POSTs)."""

from flask_wtf import FlaskForm


class JobActionForm(FlaskForm):
    """Start a system check, or cancel a job: no fields beyond the CSRF token."""
