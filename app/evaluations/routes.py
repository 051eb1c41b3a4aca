"""Evaluation pages: list, new (a dataset's held-out rows or BFCL, several models), live scores, cases."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required

from app.evaluations import bp, services
from app.evaluations.forms import MAX_MODELS, EvaluationActionForm, EvaluationForm
from app.models import Benchmark, Evaluation
from app.ownership import get_owned_or_404
from app.queueing import EnqueueError

UNPROCESSABLE = 422
CASES_SHOWN = 200


@bp.route("/")
@login_required
def index():
    return render_template(
        "evaluations/index.html", evaluations=services.list_evaluations(), action_form=EvaluationActionForm()
    )


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new():
    form = _form()
    if request.method == "GET":
        _prefill(form)
        return _render_new(form)
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return _render_new(form, UNPROCESSABLE)
    evaluation_request = services.EvaluationRequest(
        benchmark=form.benchmark.data,
        model_ids=list(dict.fromkeys(form.model_ids.data)),
        cases=form.cases.data,
        dataset_id=form.dataset_id.data,
        categories=tuple(form.categories.data or ()),
        constrained=form.constrained.data,
    )
    try:
        evaluation = services.start_evaluation(evaluation_request)
    except LookupError as exc:
        form.model_ids.errors = [str(exc)]
        return _render_new(form, UNPROCESSABLE)
    except EnqueueError as exc:
        flash(str(exc), "error")
        return _render_new(form, 503)
    return redirect(url_for("evaluations.detail", evaluation_id=evaluation.id))


@bp.route("/<int:evaluation_id>")
@login_required
def detail(evaluation_id: int):
    evaluation = get_owned_or_404(Evaluation, evaluation_id)
    services.reconcile(evaluation)
    polling = request.headers.get("HX-Request") and request.args.get("poll")
    show = "all" if request.args.get("show") == "all" else "failed"
    if polling and evaluation.finished:
        # The board stops polling; reload once so the case explorer shows every verdict.
        return "", 200, {"HX-Refresh": "true"}
    return render_template(
        "evaluations/_board.html" if polling else "evaluations/detail.html",
        evaluation=evaluation,
        results=services.ranked_results(evaluation),
        job=evaluation.job_id and services.job_of(evaluation),
        categories=services.category_labels(evaluation),
        published=services.published_rows(evaluation),
        action_form=EvaluationActionForm(),
        case_lists=[] if polling else services.case_lists(evaluation, show != "all", CASES_SHOWN),
        show=show,
    )


@bp.route("/<int:evaluation_id>/cases.csv")
@login_required
def cases_csv(evaluation_id: int):
    evaluation = get_owned_or_404(Evaluation, evaluation_id)
    filename = f"evaluation-{evaluation.id}-cases.csv"
    return Response(
        services.cases_csv(evaluation),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.route("/<int:evaluation_id>/cancel", methods=["POST"])
@login_required
def cancel(evaluation_id: int):
    evaluation = get_owned_or_404(Evaluation, evaluation_id)
    if not EvaluationActionForm().validate_on_submit():
        abort(400)
    if services.cancel_evaluation(evaluation):
        flash("Stopping the evaluation; the scores so far are kept.", "info")
    else:
        flash("The evaluation had already ended.", "info")
    return redirect(url_for("evaluations.detail", evaluation_id=evaluation.id))


@bp.route("/<int:evaluation_id>/delete", methods=["POST"])
@login_required
def delete(evaluation_id: int):
    evaluation = get_owned_or_404(Evaluation, evaluation_id)
    if not EvaluationActionForm().validate_on_submit():
        abort(400)
    services.delete_evaluation(evaluation)
    flash("Deleted the evaluation.", "success")
    return redirect(url_for("evaluations.index"))


def _form() -> EvaluationForm:
    form = EvaluationForm()
    form.model_ids.choices = [(m.id, _model_label(m)) for m in services.usable_models()]
    form.dataset_id.choices = [(0, "—")] + [
        (d.id, f"{d.name} ({d.eval_count or d.sample_count} {'held-out ' if d.eval_count else ''}rows)")
        for d in services.ready_datasets()
    ]
    return form


def _model_label(model) -> str:
    details = [model.provider.replace("_", " ")]
    if model.quantization:
        details.append(model.quantization)
    if model.owner_id is None:
        details.append("global")
    return f"{model.name} ({', '.join(details)})"


def _prefill(form: EvaluationForm) -> None:
    offered = {value for value, _ in form.model_ids.choices}
    chosen = [model_id for model_id in request.args.getlist("model_id", type=int) if model_id in offered]
    if chosen:
        form.model_ids.data = chosen[:MAX_MODELS]
    dataset_id = request.args.get("dataset_id", type=int)
    if dataset_id and any(dataset_id == value for value, _ in form.dataset_id.choices):
        form.dataset_id.data = dataset_id
    if request.args.get("benchmark") == Benchmark.BFCL.value:
        form.benchmark.data = Benchmark.BFCL.value


def _render_new(form: EvaluationForm, status: int = 200):
    return render_template("evaluations/new.html", form=form), status
