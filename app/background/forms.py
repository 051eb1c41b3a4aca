"""Job forms (CSRF-carrying POSTs)."""

from app.form_base import Form


class JobActionForm(Form):
    """Start a system check, or cancel a job: no fields beyond the CSRF token."""
