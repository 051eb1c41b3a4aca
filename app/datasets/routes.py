"""Dataset pages: list, upload, generate from a spec, preview with statistics, download, delete."""

from __future__ import annotations

from pathlib import Path

from flask import abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_login import login_required
from werkzeug.utils import secure_filename

from app.datasets import bp
from app.datasets.forms import DatasetActionForm, DatasetUploadForm, GenerateForm
from app.datasets.services import (
    DatasetError,
    DatasetProblem,
    GenerationRequest,
    delete_dataset,
    expected_rows,
    generate_inline,
    import_file,
    list_datasets,
    spec_for_generation,
    start_generation_job,
)
from app.datasets.storage import read_rows
from app.extensions import db
from app.models import ApiSpec, BackgroundJob, Dataset, DatasetStatus
from app.ownership import get_owned_or_404, owned
from app.queueing import EnqueueError

UNPROCESSABLE = 422
PREVIEW_ROWS = 10


def _index(upload_form=None, problems=None, status=200):
    return render_template(
        "datasets/index.html",
        datasets=list_datasets(),
        upload_form=upload_form or DatasetUploadForm(),
        generate_form=_generate_form(),
        action_form=DatasetActionForm(),
        problems=problems or [],
    ), status


@bp.route("/")
@login_required
def index():
    return _index()


@bp.route("/upload", methods=["POST"])
@login_required
def upload():
    form = DatasetUploadForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return _index(form, [DatasetProblem(m) for ms in form.errors.values() for m in ms], UNPROCESSABLE)
    upload_file = form.file.data
    if not upload_file or not upload_file.filename:
        return _index(form, [DatasetProblem("Choose a file.")], UNPROCESSABLE)
    limit = current_app.config["MAX_DATASET_UPLOAD_BYTES"]
    data = upload_file.read(limit + 1)
    try:
        dataset = import_file(data, upload_file.filename, form.name.data or "")
    except DatasetError as exc:
        return _index(form, exc.problems, UNPROCESSABLE)
    flash(f"Imported {dataset.name}: {dataset.sample_count} rows.", "success")
    return redirect(url_for("datasets.detail", dataset_id=dataset.id))


@bp.route("/generate", methods=["GET", "POST"])
@login_required
def generate():
    form = _generate_form()
    if request.method == "GET":
        if request.args.get("spec_id", type=int):
            form.spec_id.data = request.args.get("spec_id", type=int)
        return render_template("datasets/generate.html", form=form, problems=[])
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return render_template("datasets/generate.html", form=form, problems=[]), UNPROCESSABLE
    spec = spec_for_generation(form.spec_id.data)
    if spec is None:
        abort(404)
    generation = GenerationRequest(
        samples_per_operation=form.samples_per_operation.data,
        seed=form.seed.data or 0,
        include_irrelevant=form.include_irrelevant.data,
        dpo=form.dpo.data,
        eval_fraction=form.eval_fraction.data if form.eval_fraction.data is not None else 0.1,
        tools_per_row=form.tools_per_row.data or 0,
    )
    rows = expected_rows(spec, generation)
    if rows > current_app.config["MAX_GENERATED_ROWS"]:
        problem = DatasetProblem(
            f"That is {rows} rows; the limit is {current_app.config['MAX_GENERATED_ROWS']}. "
            "Ask for fewer per operation."
        )
        return render_template("datasets/generate.html", form=form, problems=[problem]), UNPROCESSABLE
    name = form.name.data or f"{spec.name} {'DPO' if generation.dpo else 'SFT'}"
    try:
        if rows > current_app.config["GENERATE_INLINE_ROWS"]:
            dataset = start_generation_job(spec, generation, name)
            flash(f"Generating about {rows} rows in the background.", "info")
        else:
            dataset = generate_inline(spec, generation, name)
            held_out = f"{dataset.eval_count} held out for evaluation"
            flash(f"Generated {dataset.sample_count} rows ({held_out}).", "success")
    except DatasetError as exc:
        return render_template("datasets/generate.html", form=form, problems=exc.problems), UNPROCESSABLE
    except EnqueueError as exc:
        return render_template("datasets/generate.html", form=form, problems=[DatasetProblem(str(exc))]), 503
    return redirect(url_for("datasets.detail", dataset_id=dataset.id))


@bp.route("/<int:dataset_id>")
@login_required
def detail(dataset_id: int):
    dataset = get_owned_or_404(Dataset, dataset_id)
    rows = []
    if _file_ready(dataset):
        rows = list(read_rows(Path(dataset.file_path), PREVIEW_ROWS))
    job = db.session.get(BackgroundJob, dataset.job_id) if dataset.job_id else None
    spec = db.session.get(ApiSpec, dataset.spec_id) if dataset.spec_id else None
    polling = request.headers.get("HX-Request") and request.args.get("poll")
    template = "datasets/_status.html" if polling else "datasets/detail.html"
    return render_template(
        template, dataset=dataset, rows=rows, job=job, spec=spec, action_form=DatasetActionForm()
    )


@bp.route("/<int:dataset_id>/download")
@login_required
def download(dataset_id: int):
    dataset = get_owned_or_404(Dataset, dataset_id)
    if not _file_ready(dataset):
        abort(404)
    safe = secure_filename(dataset.name) or "dataset"
    return send_file(
        dataset.file_path,
        mimetype="application/jsonl",
        as_attachment=True,
        download_name=f"{safe[:80]}.jsonl",
    )


@bp.route("/<int:dataset_id>/delete", methods=["POST"])
@login_required
def delete(dataset_id: int):
    dataset = get_owned_or_404(Dataset, dataset_id)
    if not DatasetActionForm().validate_on_submit():
        abort(400)
    if dataset.status == DatasetStatus.GENERATING.value and dataset.job_id:
        from app.queueing import request_cancel

        job = db.session.get(BackgroundJob, dataset.job_id)
        if job is not None:
            request_cancel(job)
    name = dataset.name
    delete_dataset(dataset)
    flash(f"Deleted {name}.", "success")
    return redirect(url_for("datasets.index"))


def _generate_form() -> GenerateForm:
    form = GenerateForm()
    query = owned(ApiSpec).order_by(ApiSpec.name, ApiSpec.version_number.desc())
    specs = db.session.execute(query).scalars()
    form.spec_id.choices = [(s.id, f"{s.label} ({s.operation_count} operations)") for s in specs]
    return form


def _file_ready(dataset: Dataset) -> bool:
    return (
        dataset.status == DatasetStatus.READY.value
        and bool(dataset.file_path)
        and Path(dataset.file_path).is_file()
    )
