"""The base of every form: it reads what a browser's form sends, nothing else.

Flask-WTF fills a form from `request.files` and `request.form` together, and from a JSON body when there
is no form: so a file part named like a text field reached validators that expect text, and a JSON body
put numbers, lists or a 20,000-deep array where fields expect text (each a 500, anonymous sign-in
included). No page sends JSON, and only file fields take files.
"""

from __future__ import annotations

from typing import Any

from flask import has_request_context, request
from flask_wtf import FlaskForm
from flask_wtf.form import SUBMIT_METHODS
from flask_wtf.form import _Auto as READ_THE_REQUEST  # FlaskForm's default `formdata`
from werkzeug.datastructures import CombinedMultiDict, MultiDict
from wtforms import FileField


class Form(FlaskForm):
    class Meta(FlaskForm.Meta):
        def wrap_formdata(self, form: Any, formdata: Any) -> Any:
            reading = formdata is READ_THE_REQUEST and has_request_context()
            if not reading or request.method not in SUBMIT_METHODS:
                return super().wrap_formdata(form, formdata)
            file_fields = {field.name for field in form if isinstance(field, FileField)}
            files = MultiDict(
                [(key, file) for key, file in request.files.items(multi=True) if key in file_fields]
            )
            if files:
                return CombinedMultiDict((files, request.form))
            return request.form or None
