"""Config pages: cards, editor with live lint, duplicate, delete, JSON download and upload, the schema."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import login_required
from werkzeug.utils import secure_filename

from app.configs import bp
from app.configs.forms import (
    FIELDS,
    SECTION_TITLES,
    ConfigActionForm,
    ConfigEditorForm,
    ConfigUploadForm,
    field_help,
    fill_form,
    form_to_config,
    set_choices,
)
from app.configs.linter import Finding, LintReport
from app.configs.schema import json_schema, train_py_shape
from app.configs.services import (
    MAX_CONFIG_NAME,
    ConfigUploadError,
    duplicate_config,
    fit_to_dataset,
    lint_for_user,
    list_configs,
    name_taken,
    read_upload,
    registry_model_names,
    save_config,
    unique_config_name,
    user_datasets,
)
from app.configs.templates import TEMPLATES, TEMPLATES_BY_KEY
from app.extensions import db
from app.models import ApiSpec, Dataset, TrainingConfig
from app.ownership import get_owned_or_404, owned, owned_or_none

UNPROCESSABLE = 422
DOWNLOAD_SHAPES = ("toolsmith", "train_py")


@bp.route("/")
@login_required
def index():
    return render_template(
        "configs/index.html",
        configs=list_configs(),
        templates=TEMPLATES,
        upload_form=ConfigUploadForm(),
        action_form=ConfigActionForm(),
        upload_findings=[],
    )


@bp.route("/schema.json")
def schema():
    """The config format as JSON Schema (public: it describes a format, not anyone's data)."""
    return jsonify(json_schema())


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new():
    template = TEMPLATES_BY_KEY.get(request.args.get("template", "sft_toolbench"))
    if template is None:
        abort(404)
    form = _editor_form()
    if request.method == "GET":
        # A second config from the same template would otherwise be refused on Save for its name.
        form.name.data = unique_config_name(template.title)
        form.description.data = template.summary
        fill_form(form, _with_linked_data(template.build()))
    return _edit(form, None, template.key)


@bp.route("/<int:config_id>/edit", methods=["GET", "POST"])
@login_required
def edit(config_id: int):
    row = get_owned_or_404(TrainingConfig, config_id)
    form = _editor_form()
    if request.method == "GET":
        form.name.data = row.name
        form.description.data = row.description
        fill_form(form, row.config)
    return _edit(form, row, row.template_type)


def _edit(form: ConfigEditorForm, row: TrainingConfig | None, template_key: str | None):
    report = None
    status = 200
    if request.method == "POST":
        if not form.validate_on_submit() and "csrf_token" in form.errors:
            abort(400)
        config, problems = form_to_config(form)
        name = (form.name.data or "").strip()[:MAX_CONFIG_NAME]  # as it is saved
        if not name:
            report = _with_problems(lint_for_user(config), problems)
            flash("Give the config a name.", "error")
            status = UNPROCESSABLE
        elif name_taken(name, row.id if row else None):
            report = _with_problems(lint_for_user(config), problems)
            flash(f"You already have a config named {name!r}.", "error")
            status = UNPROCESSABLE
        elif problems:
            report = _with_problems(lint_for_user(config), problems)
            status = UNPROCESSABLE
        else:
            result = save_config(config, name, form.description.data or "", template_key, existing=row)
            if result.config is not None:
                flash(f"Saved {result.config.name}.", "success")
                return redirect(url_for("configs.edit", config_id=result.config.id))
            report = result.report
            status = UNPROCESSABLE
    if report is None:
        config, problems = form_to_config(form)
        report = _with_problems(lint_for_user(config), problems)
    return render_template(
        "configs/edit.html",
        form=form,
        row=row,
        template_key=template_key,
        template_title=TEMPLATES_BY_KEY[template_key].title if template_key in TEMPLATES_BY_KEY else None,
        report=report,
        findings=report.by_path(),
        sections=_sections(),
        help=field_help,
        action_form=ConfigActionForm(),
    ), status


@bp.route("/lint", methods=["POST"])
@login_required
def lint_form():
    """HTMX: the editor's current values → each field's findings (out-of-band) and the summary panel.

    Runs on every change, so no picker choices are loaded: nothing here renders the fields."""
    form = ConfigEditorForm()
    if not form.validate_on_submit() and "csrf_token" in form.errors:
        abort(400)
    config, problems = form_to_config(form)
    report = _with_problems(lint_for_user(config), problems)
    return render_template(
        "configs/_lint.html", report=report, findings=report.by_path(), fields=FIELDS, oob=True
    )


@bp.route("/<int:config_id>/duplicate", methods=["POST"])
@login_required
def duplicate(config_id: int):
    row = get_owned_or_404(TrainingConfig, config_id)
    if not ConfigActionForm().validate_on_submit():
        abort(400)
    copy = duplicate_config(row)
    flash(f"Duplicated as {copy.name}.", "success")
    return redirect(url_for("configs.edit", config_id=copy.id))


@bp.route("/<int:config_id>/delete", methods=["POST"])
@login_required
def delete(config_id: int):
    row = get_owned_or_404(TrainingConfig, config_id)
    if not ConfigActionForm().validate_on_submit():
        abort(400)
    db.session.delete(row)
    db.session.commit()
    flash(f"Deleted {row.name}.", "success")
    return redirect(url_for("configs.index"))


@bp.route("/<int:config_id>/download")
@login_required
def download(config_id: int):
    row = get_owned_or_404(TrainingConfig, config_id)
    shape = request.args.get("shape", "toolsmith")
    if shape not in DOWNLOAD_SHAPES:
        abort(404)
    report = lint_for_user(row.config)
    if not report.ok:  # something it refers to changed since it was saved (a dataset was deleted, ...)
        flash("Fix the errors before downloading.", "error")
        return redirect(url_for("configs.edit", config_id=row.id))
    body = train_py_shape(report.config) if shape == "train_py" else report.config.model_dump(mode="json")
    filename = (
        (secure_filename(row.name)[:80] or "config") + ("-train_py" if shape == "train_py" else "") + ".json"
    )
    return Response(
        json.dumps(body, indent=2) + "\n",
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.route("/upload", methods=["POST"])
@login_required
def upload():
    form = ConfigUploadForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
    findings = []
    upload_file = form.file.data
    if not upload_file or not upload_file.filename:
        findings = [_file_problem("Choose a JSON file.")]
    else:
        try:
            raw = read_upload(
                upload_file.read(current_app.config["MAX_CONFIG_UPLOAD_BYTES"] + 1),
                current_app.config["MAX_CONFIG_UPLOAD_BYTES"],
            )
        except ConfigUploadError as exc:
            findings = exc.findings
        else:
            name = (form.name.data or "").strip() or _name_from_filename(upload_file.filename)
            name = unique_config_name(name)
            result = save_config(raw, name, "Uploaded from " + upload_file.filename[:200])
            if result.config is not None:
                note = f" with {len(result.report.warnings)} warning(s)" if result.report.warnings else ""
                flash(f"Uploaded {result.config.name}{note}.", "success")
                return redirect(url_for("configs.edit", config_id=result.config.id))
            findings = result.report.errors
    return render_template(
        "configs/index.html",
        configs=list_configs(),
        templates=TEMPLATES,
        upload_form=form,
        action_form=ConfigActionForm(),
        upload_findings=findings,
    ), UNPROCESSABLE


# --- helpers -----------------------------------------------------------------------------------------


def _editor_form() -> ConfigEditorForm:
    form = ConfigEditorForm()
    specs = [s.name for s in db.session.execute(owned(ApiSpec)).scalars()]
    set_choices(form, list(user_datasets()), list(registry_model_names()), sorted(set(specs)))
    return form


def _sections() -> list[tuple[str, str, list[Any]]]:
    grouped: dict[str, list[Any]] = {}
    for spec in FIELDS:
        key = "tools" if spec.path == "tools" else spec.section
        grouped.setdefault(key, []).append(spec)
    return [(key, SECTION_TITLES[key], specs) for key, specs in grouped.items()]


def _with_problems(report: LintReport, problems: list) -> LintReport:
    """Form conversion problems replace the linter's view of those same fields."""
    if not problems:
        return report
    paths = {p.path for p in problems}
    kept = [f for f in report.findings if f.path not in paths]
    return LintReport(report.config, problems + kept, report.memory, report.machine_memory_bytes)


def _name_from_filename(filename: str) -> str:
    stem = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    return stem[:-5] if stem.lower().endswith(".json") else stem


def _file_problem(message: str) -> Finding:
    return Finding("error", "", message, "no_file")


def _with_linked_data(config: dict[str, Any]) -> dict[str, Any]:
    """The dataset and spec a link names (`dataset_id`, `spec_id`, as a dataset's page sends them) put in
    the config; an id that is not one of the user's own is left out silently, like a link without it."""
    dataset = owned_or_none(Dataset, request.args.get("dataset_id", type=int))
    spec = owned_or_none(ApiSpec, request.args.get("spec_id", type=int))
    if dataset is not None:
        config["data"]["dataset"] = dataset.name
        fit_to_dataset(config, dataset)
    if spec is not None:
        config["data"]["source_spec"] = spec.name
    return config
