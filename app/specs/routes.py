"""Specs pages: import (upload or paste), list, operations with their tools, delete."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_login import login_required

from app.models import ApiSpec
from app.openapi.normalise import NormalisedSpec
from app.openapi.tools import operation_tool
from app.ownership import get_owned_or_404
from app.specs import bp
from app.specs.forms import SpecActionForm, SpecImportForm
from app.specs.services import SpecImportError, delete_spec, import_spec, list_specs

UNPROCESSABLE = 422


@bp.route("/", methods=["GET", "POST"])
@login_required
def index():
    form = SpecImportForm()
    problems = []
    if form.validate_on_submit():
        upload = form.file.data
        data = upload.read() if upload and upload.filename else (form.text.data or "")
        filename = upload.filename if upload and upload.filename else None
        if not data:
            problems = [("Choose a file or paste a document.", None)]
        else:
            try:
                spec = import_spec(data, filename, form.name.data)
            except SpecImportError as exc:
                problems = [(p.message, p.location) for p in exc.problems]
            else:
                flash(f"Imported {spec.label}: {spec.operation_count} operations.", "success")
                return redirect(url_for("specs.detail", spec_id=spec.id))
    status = UNPROCESSABLE if problems or form.errors else 200
    return render_template(
        "specs/index.html", form=form, specs=list_specs(), problems=problems, action_form=SpecActionForm()
    ), status


@bp.route("/<int:spec_id>")
@login_required
def detail(spec_id: int):
    spec = get_owned_or_404(ApiSpec, spec_id)
    normalised = NormalisedSpec.from_dict(spec.normalised)
    operations = [(op, operation_tool(op)) for op in normalised.operations]
    return render_template(
        "specs/detail.html",
        spec=spec,
        normalised=normalised,
        operations=operations,
        action_form=SpecActionForm(),
    )


@bp.route("/<int:spec_id>/delete", methods=["POST"])
@login_required
def delete(spec_id: int):
    spec = get_owned_or_404(ApiSpec, spec_id)
    if not SpecActionForm().validate_on_submit():
        abort(400)
    delete_spec(spec)
    flash(f"Deleted {spec.label}.", "success")
    return redirect(url_for("specs.index"))
