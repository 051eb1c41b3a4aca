"""Run pages: start (with the linter's verdict and estimate), list, live status, cancel / resume / retry,
push to the Hub, compare runs."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import login_required

from app.configs.linter import LintReport
from app.extensions import db
from app.models import (
    BackgroundJob,
    Dataset,
    JobStatus,
    LLMModel,
    RunMetric,
    TrainingConfig,
    TrainingRun,
    TrainingSweep,
)
from app.ownership import get_owned_or_404, owned
from app.queueing import EnqueueError, queue_wait
from app.serving.default_model import DEFAULT_MODEL_NAME
from app.training import bp
from app.training.charts import loss_chart_svg
from app.training.compare import CompareError, config_rows, parse_run_ids, run_columns
from app.training.compare_chart import RunSeries, compare_loss_chart_svg, series_colour
from app.training.evaluation_text import metric_parts
from app.training.files import eval_items, log_tail, run_log_path
from app.training.forms import PushForm, RunActionForm, StartRunForm
from app.training.services import (
    RunRefused,
    asks_for_export,
    cancel_run,
    check_submit,
    dataset_for_config,
    delete_run,
    push_run,
    reconcile_run,
    resume_run,
    retry_run,
    start_run,
    training_finished,
)
from app.training.source_spec import run_spec
from app.training.sweeps import SweepError, axis_label, lint_sweep, parse_axes, point_label, start_sweep

UNPROCESSABLE = 422
LOG_LINES_SHOWN = 40


@dataclass
class SweepCheck:
    """What the checks panel says of a sweep: why it cannot start, or each combination's verdict."""

    error: str = ""
    points: list[tuple[str, bool, int]] = field(default_factory=list)  # (label, passes, warnings)
    label: str = ""  # the combination whose full report is shown
    report: LintReport | None = None


def _start_form() -> StartRunForm:
    form = StartRunForm()
    configs = db.session.execute(owned(TrainingConfig).order_by(TrainingConfig.name)).scalars()
    datasets = db.session.execute(
        owned(Dataset).where(Dataset.status == "ready").order_by(Dataset.name)
    ).scalars()
    form.config_id.choices = [(c.id, c.name) for c in configs]
    form.dataset_id.choices = [
        (d.id, f"{d.name} ({d.kind.upper()}, {d.sample_count} rows)") for d in datasets
    ]
    return form


@bp.route("/", methods=["GET", "POST"])
@login_required
def index():
    form = _start_form()
    report = None
    sweep_check = None
    status = 200
    if request.method == "GET":  # links from a config's card or a dataset's page pick it in the form
        form.config_id.data = request.args.get("config_id", form.config_id.data, type=int)
        form.dataset_id.data = request.args.get(
            "dataset_id", dataset_for_config(form.config_id.data, form.dataset_id.data), type=int
        )
    if form.validate_on_submit():
        config = get_owned_or_404(TrainingConfig, form.config_id.data)
        dataset = get_owned_or_404(Dataset, form.dataset_id.data)
        try:
            axes = parse_axes(form.sweep_texts())
            if axes:
                sweep = start_sweep(config, dataset, axes, form.name.data or "")
                return redirect(url_for("training.sweep", sweep_id=sweep.id))
            run = start_run(config, dataset, form.name.data or "")
        except RunRefused as exc:
            report, status = exc.report, UNPROCESSABLE
            flash(str(exc), "error")
        except SweepError as exc:
            status = UNPROCESSABLE
            sweep_check = SweepCheck(error=str(exc), report=exc.report, label=exc.label)
            flash(str(exc), "error")
        except EnqueueError as exc:
            flash(str(exc), "error")
            status = 503
        else:
            return redirect(url_for("training.detail", run_id=run.id))
    elif request.method == "POST":
        if "csrf_token" in form.errors:
            abort(400)
        status = UNPROCESSABLE
    runs = list(db.session.execute(owned(TrainingRun).order_by(TrainingRun.id.desc())).scalars())
    for run in runs:
        reconcile_run(run)
    sweeps = {s.id: s for s in db.session.execute(owned(TrainingSweep)).scalars()}
    swept = {s.id: " × ".join(axis_label(key) for key in s.axes or {}) for s in sweeps.values()}
    return render_template(
        "training/index.html",
        form=form,
        runs=runs,
        sweeps=sweeps,
        swept=swept,
        report=report,
        sweep_check=sweep_check,
    ), status


@bp.route("/check", methods=["POST"])
@login_required
def check():
    """HTMX: the linter's verdict and estimate for the picked config + dataset (every combination of a
    sweep), before submitting."""
    form = _start_form()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return render_template("training/_check.html", report=None)
    config = get_owned_or_404(TrainingConfig, form.config_id.data)
    dataset = get_owned_or_404(Dataset, form.dataset_id.data)
    try:
        axes = parse_axes(form.sweep_texts())
        if not axes:
            return render_template("training/_check.html", report=check_submit(config, dataset))
        points = lint_sweep(config, dataset, axes)
    except SweepError as exc:
        return render_template("training/_check.html", report=None, sweep_check=SweepCheck(error=str(exc)))
    failing = next(((p, r) for p, r in points if not r.ok), None)
    shown_point, shown_report = failing or points[0]
    return render_template(
        "training/_check.html",
        report=shown_report,
        sweep_check=SweepCheck(
            points=[(point_label(p), r.ok, len(r.warnings)) for p, r in points],
            label=point_label(shown_point),
        ),
    )


@bp.route("/compare")
@login_required
def compare():
    """2 to 4 of the user's runs side by side: loss curves, config differences, outcomes."""
    try:
        run_ids = parse_run_ids(request.args.getlist("run"))
    except CompareError as exc:
        flash(str(exc), "error")
        return render_template("training/compare.html", columns=[], picked=request.args.getlist("run")), 400
    runs = [get_owned_or_404(TrainingRun, run_id) for run_id in run_ids]
    for run in runs:
        reconcile_run(run)
    columns = run_columns(runs)
    show_all = request.args.get("keys") == "all"
    all_keys = config_rows([c.run.config for c in columns], only_differences=False)
    return render_template(
        "training/compare.html",
        columns=columns,
        colours=[series_colour(i) for i in range(len(columns))],
        chart=compare_loss_chart_svg([RunSeries(c.run.name, c.points) for c in columns]),
        config_rows=all_keys if show_all else [row for row in all_keys if row.differs],
        key_count=len(all_keys),
        differing_count=sum(row.differs for row in all_keys),
        show_all=show_all,
        run_ids=run_ids,
        picked=run_ids,
    )


@bp.route("/<int:run_id>")
@login_required
def detail(run_id: int):
    run = get_owned_or_404(TrainingRun, run_id)
    reconcile_run(run)
    if request.args.get("poll"):
        return render_template("training/_status.html", **_status_context(run))
    evaluated = "eval_rows" in (run.evaluation or {})  # the exported model answered held-out rows
    items = eval_items(run.owner_id, run.id) if evaluated else []
    misses_only = request.args.get("answers") != "all"
    shown = [item for item in items if not (misses_only and item.get("correct"))]
    return render_template(
        "training/run.html",
        **_status_context(run),
        eval_items=items,
        shown_items=shown,
        misses_only=misses_only,
    )


def _status_context(run: TrainingRun) -> dict:
    metrics = list(
        db.session.execute(
            db.select(RunMetric).where(RunMetric.run_id == run.id).order_by(RunMetric.id)
        ).scalars()
    )
    points = [{"step": m.step, "loss": m.loss, "eval_loss": m.eval_loss} for m in metrics]
    models = []
    if run.model_ids:
        # By the run and its owner too: SQLite hands a deleted model's id to the next model, anyone's.
        owned_here = (LLMModel.training_run_id == run.id, LLMModel.owner_id == run.owner_id)
        models = list(
            db.session.execute(
                db.select(LLMModel).where(LLMModel.id.in_(run.model_ids), *owned_here)
            ).scalars()
        )
    job = db.session.get(BackgroundJob, run.job_id) if run.stage == "queued" and run.job_id else None
    return {
        "run": run,
        "queue_wait": queue_wait(job) if job is not None and job.status == JobStatus.QUEUED else None,
        "chart": loss_chart_svg(points),
        # The train loss beside it is one noisy batch's: the held-out figure is the one to watch.
        "last_eval_loss": next((m.eval_loss for m in reversed(metrics) if m.eval_loss is not None), None),
        "evaluation_parts": metric_parts(run.evaluation),
        "log_lines": log_tail(run_log_path(run.owner_id, run.id), LOG_LINES_SHOWN),
        "export_left": run.is_final and run.stage != "done" and training_finished(run),
        "asks_for_export": asks_for_export(run),
        "models": models,
        "base_model": _registered_base(run) if models else None,
        "trained_spec": run_spec(run) if models else None,
        "action_form": RunActionForm(),
        "push_form": _push_form(run),
    }


def _registered_base(run: TrainingRun) -> LLMModel | None:
    """The registry's copy of the run's base model, to compare the tuned one with: the default base only
    (another base has no GGUF of its own in the registry)."""
    from jobs.training.base_model import DEFAULT_BASE_NAMES

    if (run.config or {}).get("model", {}).get("name") not in DEFAULT_BASE_NAMES:
        return None
    query = db.select(LLMModel).where(
        LLMModel.name == DEFAULT_MODEL_NAME, LLMModel.owner_id.is_(None), LLMModel.enabled.is_(True)
    )
    return db.session.execute(query).scalars().first()


def _push_form(run: TrainingRun) -> PushForm:
    export = (run.config or {}).get("export", {})
    repo = (run.hub_push or {}).get("repo") or export.get("hub_repo_id") or ""
    return PushForm(formdata=None, repo_id=repo, private=export.get("hub_private", True))


def _action(run_id: int, action) -> tuple[TrainingRun, bool]:
    """(the run, whether the action went ahead); a refusal is flashed."""
    run = get_owned_or_404(TrainingRun, run_id)
    if not RunActionForm().validate_on_submit():
        abort(400)
    try:
        action(run)
    except (RunRefused, EnqueueError) as exc:
        flash(str(exc), "error")
        return run, False
    return run, True


@bp.route("/<int:run_id>/cancel", methods=["POST"])
@login_required
def cancel(run_id: int):
    run, done = _action(run_id, cancel_run)
    if done and run.stage != "done":
        flash("Stopping the run: it keeps its last checkpoint.", "info")
    return redirect(url_for("training.detail", run_id=run_id))


@bp.route("/<int:run_id>/resume", methods=["POST"])
@login_required
def resume(run_id: int):
    _action(run_id, resume_run)
    return redirect(url_for("training.detail", run_id=run_id))


@bp.route("/<int:run_id>/retry", methods=["POST"])
@login_required
def retry(run_id: int):
    _action(run_id, retry_run)
    return redirect(url_for("training.detail", run_id=run_id))


@bp.route("/<int:run_id>/delete", methods=["POST"])
@login_required
def delete(run_id: int):
    run, _ = _action(run_id, delete_run)
    if db.session.get(TrainingRun, run.id) is not None:
        return redirect(url_for("training.detail", run_id=run_id))
    flash("Deleted the run and its files (registered models keep theirs).", "success")
    return redirect(url_for("training.index"))


@bp.route("/<int:run_id>/push", methods=["POST"])
@login_required
def push(run_id: int):
    run = get_owned_or_404(TrainingRun, run_id)
    form = PushForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        for errors in form.errors.values():
            flash(errors[0], "error")
        return redirect(url_for("training.detail", run_id=run_id))
    try:
        push_run(run, form.repo_id.data, form.private.data)
    except (RunRefused, EnqueueError) as exc:
        flash(str(exc), "error")
    else:
        flash(f"Pushing to {form.repo_id.data}: this page shows the outcome.", "info")
    return redirect(url_for("training.detail", run_id=run_id))


@bp.route("/<int:run_id>/save-config", methods=["POST"])
@login_required
def save_run_config(run_id: int):
    """The run's config snapshot (a sweep's winning values included) as a new saved config to reuse."""
    from app.configs.services import save_config, unique_config_name

    run = get_owned_or_404(TrainingRun, run_id)
    if not RunActionForm().validate_on_submit():
        abort(400)
    source = db.session.get(TrainingConfig, run.config_id) if run.config_id else None
    result = save_config(
        run.config,
        unique_config_name(f"{run.name[:100]} (run #{run.id})"),
        description=f"Saved from training run #{run.id} on {run.dataset_name or 'a deleted dataset'}.",
        template_type=source.template_type
        if source is not None and source.owner_id == run.owner_id
        else None,
    )
    if result.config is None:
        problems = "; ".join(f"{f.path}: {f.message}" for f in result.report.errors[:3])
        flash(f"The run's config no longer passes the linter: {problems}", "error")
        return redirect(url_for("training.detail", run_id=run.id))
    flash(f"Saved the run's config as {result.config.name}.", "success")
    return redirect(url_for("configs.edit", config_id=result.config.id))
