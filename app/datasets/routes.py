"""Dataset pages: list, upload, generate from a spec, browse and edit rows, statistics, download, delete."""

from __future__ import annotations

import json
from pathlib import Path

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from flask_login import login_required
from werkzeug.utils import secure_filename

from app.datasets import bp
from app.datasets.browse import RowFilter, browse, matching_lines, row_digest
from app.datasets.editing import delete_row, draw_split, drop_duplicates, replace_row, set_row_split
from app.datasets.forms import (
    CombineForm,
    DatasetActionForm,
    DatasetUploadForm,
    GenerateForm,
    HubImportForm,
    RowEditForm,
    RowJSONForm,
    SplitForm,
)
from app.datasets.hub import push_dataset, push_under_way, start_hub_import
from app.datasets.services import (
    DatasetError,
    DatasetProblem,
    GenerationRequest,
    combine_datasets,
    delete_dataset,
    expected_rows,
    generate_inline,
    import_file,
    list_datasets,
    reconcile_dataset,
    spec_for_generation,
    start_generation_job,
)
from app.datasets.storage import read_lines
from app.extensions import db
from app.json_input import loads as loads_json
from app.models import ApiSpec, BackgroundJob, Dataset, DatasetStatus
from app.ownership import get_owned_or_404, owned
from app.queueing import EnqueueError

UNPROCESSABLE = 422
ROWS_TARGET = "dataset-rows"


def _index(upload_form=None, problems=None, status=200, hub_form=None):
    return render_template(
        "datasets/index.html",
        datasets=list_datasets(),
        upload_form=upload_form or DatasetUploadForm(),
        hub_form=hub_form or HubImportForm(formdata=None),
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


@bp.route("/import-hub", methods=["POST"])
@login_required
def import_hub():
    """Queue an import of a dataset repo from the Hugging Face Hub; its page shows the progress."""
    form = HubImportForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return _index(status=UNPROCESSABLE, hub_form=form)
    try:
        dataset = start_hub_import(
            form.repo_id.data, form.path.data or "", form.revision.data or "", form.name.data or ""
        )
    except EnqueueError as exc:
        flash(str(exc), "error")
        return _index(status=503, hub_form=form)
    flash(f"Importing {form.repo_id.data} from the Hugging Face Hub.", "info")
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


@bp.route("/combine", methods=["GET", "POST"])
@login_required
def combine():
    """Several of the user's datasets of one kind → one new dataset (duplicates dropped, split kept or
    drawn again)."""
    ready = [d for d in list_datasets() if d.status == DatasetStatus.READY.value]
    form = CombineForm()
    form.datasets.choices = [
        (d.id, f"{d.name} ({d.kind.upper()}, {d.sample_count} row{'s' if d.sample_count != 1 else ''})")
        for d in ready
    ]
    if not form.is_submitted():
        form.datasets.data = request.args.getlist("dataset", type=int)
        return render_template("datasets/combine.html", form=form)
    if not form.validate():
        return render_template("datasets/combine.html", form=form), UNPROCESSABLE
    by_id = {d.id: d for d in ready}
    sources = [by_id[i] for i in dict.fromkeys(form.datasets.data or []) if i in by_id]
    eval_share = (form.eval_fraction.data or 0.0) if form.resplit.data else None
    try:
        dataset, duplicates = combine_datasets(
            sources,
            form.name.data.strip(),
            drop_duplicates=form.drop_duplicates.data,
            eval_share=eval_share,
            seed=form.seed.data or 0,
        )
    except DatasetError as exc:
        return render_template("datasets/combine.html", form=form, problems=exc.problems), UNPROCESSABLE
    dropped = f", {duplicates} duplicate{'s' if duplicates != 1 else ''} dropped" if duplicates else ""
    flash(f"Combined {len(sources)} datasets into {dataset.sample_count} rows{dropped}.", "success")
    return redirect(url_for("datasets.detail", dataset_id=dataset.id))


@bp.route("/<int:dataset_id>")
@login_required
def detail(dataset_id: int):
    from app.training.forms import PushForm  # here: app.training imports this blueprint's package

    dataset = get_owned_or_404(Dataset, dataset_id)
    reconcile_dataset(dataset)
    job = db.session.get(BackgroundJob, dataset.job_id) if dataset.job_id else None
    if request.headers.get("HX-Request") and request.args.get("poll"):  # every second while generating
        return render_template("datasets/_status.html", dataset=dataset, job=job)
    spec = db.session.get(ApiSpec, dataset.spec_id) if dataset.spec_id else None
    row_filter = RowFilter.from_args(request.args)
    if _file_ready(dataset):
        row_filter = row_filter.with_train_requests(read_lines(Path(dataset.file_path)))
    page = browse(
        read_lines(Path(dataset.file_path)) if _file_ready(dataset) else [],
        dataset.kind,
        row_filter,
        request.args.get("page", 1, type=int),
    )
    rows_only = request.headers.get("HX-Request") and request.headers.get("HX-Target") == ROWS_TARGET
    template = "datasets/_rows.html" if rows_only else "datasets/detail.html"
    return render_template(
        template,
        dataset=dataset,
        page=page,
        row_filter=row_filter,
        job=job,
        spec=spec,
        action_form=DatasetActionForm(),
        row_form=RowEditForm(),
        split_form=SplitForm(formdata=None),
        push_form=PushForm(formdata=None, repo_id=(dataset.hub_push or {}).get("repo") or ""),
        pushing=push_under_way(dataset),
    )


@bp.route("/<int:dataset_id>/push", methods=["POST"])
@login_required
def push(dataset_id: int):
    """Push the dataset to a Hub dataset repo, as a job; the page shows the outcome."""
    from app.training.forms import PushForm

    dataset = get_owned_or_404(Dataset, dataset_id)
    form = PushForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        flash("; ".join(sum(form.errors.values(), [])), "error")
        return redirect(url_for("datasets.detail", dataset_id=dataset.id) + "#dataset-hub")
    try:
        push_dataset(dataset, form.repo_id.data, form.private.data)
    except DatasetError as exc:
        flash(str(exc), "error")
    except EnqueueError as exc:
        flash(str(exc), "error")
    else:
        flash(f"Pushing {dataset.name} to {form.repo_id.data}: the Jobs page shows its progress.", "success")
    return redirect(url_for("datasets.detail", dataset_id=dataset.id) + "#dataset-hub")


@bp.route("/<int:dataset_id>/split", methods=["POST"])
@login_required
def split(dataset_id: int):
    """Hold out a share of the rows for evaluation, drawn with a seed (the rest train)."""
    dataset = get_owned_or_404(Dataset, dataset_id)
    form = SplitForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        flash("; ".join(sum(form.errors.values(), [])), "error")
        return redirect(url_for("datasets.detail", dataset_id=dataset.id))
    try:
        dataset = draw_split(dataset, form.eval_fraction.data, form.seed.data or 0)
        flash(
            f"{dataset.eval_count} rows held out for evaluation, {dataset.train_count} for training.",
            "success",
        )
    except DatasetError as exc:
        flash(str(exc), "error")
    return redirect(url_for("datasets.detail", dataset_id=dataset.id))


@bp.route("/<int:dataset_id>/deduplicate", methods=["POST"])
@login_required
def deduplicate(dataset_id: int):
    """Drop rows that repeat an earlier one (split and meta aside)."""
    dataset = get_owned_or_404(Dataset, dataset_id)
    if not DatasetActionForm().validate_on_submit():
        abort(400)
    try:
        dataset, dropped = drop_duplicates(dataset)
    except DatasetError as exc:
        flash(str(exc), "error")
    else:
        message = (
            f"Removed {dropped} duplicate row{'s' if dropped != 1 else ''}." if dropped else "No duplicates."
        )
        flash(message, "success")
    return redirect(url_for("datasets.detail", dataset_id=dataset.id))


@bp.route("/<int:dataset_id>/rows/<int:number>/delete", methods=["POST"])
@login_required
def delete_dataset_row(dataset_id: int, number: int):
    dataset = get_owned_or_404(Dataset, dataset_id)
    form = RowEditForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        delete_row(dataset, number, form.digest.data)
        flash(f"Deleted row {number}.", "success")
    except DatasetError as exc:
        flash(str(exc), "error")
    return _back_to_rows(dataset, form)


@bp.route("/<int:dataset_id>/rows/<int:number>/split", methods=["POST"])
@login_required
def move_dataset_row(dataset_id: int, number: int):
    dataset = get_owned_or_404(Dataset, dataset_id)
    form = RowEditForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        set_row_split(dataset, number, form.digest.data, form.to_split.data)
        flash(f"Row {number} is now in {form.to_split.data}.", "success")
    except DatasetError as exc:
        flash(str(exc), "error")
    return _back_to_rows(dataset, form)


@bp.route("/<int:dataset_id>/rows/<int:number>/edit", methods=["GET", "POST"])
@login_required
def edit_dataset_row(dataset_id: int, number: int):
    """The row as JSON in a text box; saved only when it is a valid row of the dataset's kind."""
    dataset = get_owned_or_404(Dataset, dataset_id)
    form = RowJSONForm()
    if not form.is_submitted():
        row = _row_at(dataset, number)
        if row is None or row_digest(row) != request.args.get("digest"):
            return _row_gone(dataset)
        form.digest.data, form.row_json.data = row_digest(row), json.dumps(row, indent=2, ensure_ascii=False)
        form.q.data, form.split.data, form.call.data, form.longer.data, form.page.data = (
            request.args.get(key, "") for key in ("q", "split", "call", "longer", "page")
        )
        return render_template("datasets/_row_editor.html", dataset=dataset, number=number, form=form)
    problems = sum(form.errors.values(), []) if not form.validate() else []
    if not problems:
        try:
            row = loads_json(form.row_json.data, allow_constants=False, text_only=True)  # NaN: not JSON
            replace_row(dataset, number, form.digest.data, row)
        except ValueError as exc:
            problems = (
                [p.message for p in exc.problems]
                if isinstance(exc, DatasetError)
                else [f"Not valid JSON: {exc}"]
            )
    if problems:
        return render_template(
            "datasets/_row_editor.html", dataset=dataset, number=number, form=form, problems=problems
        ), UNPROCESSABLE
    flash(f"Saved row {number}.", "success")
    back = _back_to_rows(dataset, form)
    if request.headers.get("HX-Request"):  # the editor sits inside the list: reload the whole page
        back.headers["HX-Redirect"] = back.headers["Location"]
        back.status_code = 200
    return back


def _row_at(dataset: Dataset, number: int) -> dict | None:
    if not _file_ready(dataset) or number < 1:
        return None
    for index, line in enumerate(read_lines(Path(dataset.file_path)), start=1):
        if index == number:
            return json.loads(line)  # only the row asked for is parsed
    return None


def _row_gone(dataset: Dataset):
    message = "That row has changed since the page was loaded. Reload the page and try again."
    return render_template("chat/_error.html", message=message), UNPROCESSABLE


@bp.app_template_filter("length_ranges")
def length_ranges_filter(stats: dict | None) -> list:
    from app.datasets.stats import length_ranges

    return length_ranges(stats or {})


@bp.app_template_filter("row_digest")
def row_digest_filter(row: dict) -> str:
    return row_digest(row)


def _back_to_rows(dataset: Dataset, form: RowEditForm):
    """Back to the page the edit came from, filters and page number kept."""
    url = url_for("datasets.detail", dataset_id=dataset.id, **form.view_args())
    return redirect(url + "#dataset-rows", code=303)


@bp.route("/<int:dataset_id>/download")
@login_required
def download(dataset_id: int):
    dataset = get_owned_or_404(Dataset, dataset_id)
    if not _file_ready(dataset):
        abort(404)
    safe = secure_filename(dataset.name) or "dataset"
    row_filter = RowFilter.from_args(request.args).with_train_requests(read_lines(Path(dataset.file_path)))
    if not row_filter.active:
        return send_file(
            dataset.file_path,
            mimetype="application/jsonl",
            as_attachment=True,
            download_name=f"{safe[:80]}.jsonl",
        )
    # The rows the page's search and filters keep, streamed as they are found.
    lines = matching_lines(read_lines(Path(dataset.file_path)), dataset.kind, row_filter)
    headers = {"Content-Disposition": f'attachment; filename="{safe[:70]}-filtered.jsonl"'}
    return Response(stream_with_context(lines), mimetype="application/jsonl", headers=headers)


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
