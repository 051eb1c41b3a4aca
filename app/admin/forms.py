"""Admin forms: each action is a POST through a form so it carries the CSRF token."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField
from wtforms.validators import AnyOf, InputRequired

USER_ACTIONS = ("disable", "enable", "make_admin", "revoke_admin")


class UserActionForm(FlaskForm):
    action = HiddenField(validators=[InputRequired(), AnyOf(USER_ACTIONS, message="Unknown action.")])
