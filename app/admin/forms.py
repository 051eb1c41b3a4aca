"""Admin forms: each action is a POST through a form so it carries the CSRF token."""

from __future__ import annotations

from wtforms import HiddenField
from wtforms.validators import AnyOf, InputRequired

from app.form_base import Form

USER_ACTIONS = ("disable", "enable", "make_admin", "revoke_admin")


class UserActionForm(Form):
    action = HiddenField(validators=[InputRequired(), AnyOf(USER_ACTIONS, message="Unknown action.")])
