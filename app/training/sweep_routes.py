"""A sweep's page: its runs side by side (swept values, stage, losses, held-out accuracy, the best of
each marked), their loss curves on one chart, live while any run goes on; cancel or delete them all."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import login_required

from app.extensions import db
from app.models import TrainingSweep
from app.ownership import get_owned_or_404
from app.training import bp
from app.training.compare_chart import RunSeries, compare_loss_chart_svg, series_colour
from app.training.forms import RunActionForm
from app.training.services import RunRefused, cancel_run, delete_run, reconcile_run
from app.training.sweeps import axis_label, format_number, sweep_runs, sweep_table


@bp.route("/sweeps/<int:sweep_id>")
@login_required
def sweep(sweep_id: int):
    sweep = get_owned_or_404(TrainingSweep, sweep_id)
    runs = sweep_runs(sweep)
    for run in runs:
        reconcile_run(run)
    table = sweep_table(sweep, runs)
    context = {
        "sweep": sweep,
        "table": table,
        "axis_labels": [axis_label(key) for key in sweep.axes or {}],
        "axis_values": {
            axis_label(key): ", ".join(map(format_number, values))
            for key, values in (sweep.axes or {}).items()
        },
        "colours": [series_colour(i) for i in range(len(table.rows))],
        "chart": compare_loss_chart_svg([RunSeries(row.label, row.column.points) for row in table.rows]),
        "action_form": RunActionForm(),
    }
    if request.args.get("poll"):
        return render_template("training/_sweep_status.html", **context)
    return render_template("training/sweep.html", **context)


def _checked_sweep(sweep_id: int) -> TrainingSweep:
    sweep = get_owned_or_404(TrainingSweep, sweep_id)
    if not RunActionForm().validate_on_submit():
        abort(400)
    return sweep


@bp.route("/sweeps/<int:sweep_id>/cancel", methods=["POST"])
@login_required
def cancel_sweep(sweep_id: int):
    """Stop every run still queued or training; finished ones keep their results."""
    sweep = _checked_sweep(sweep_id)
    stopped, refused = 0, []
    for run in sweep_runs(sweep):
        if run.is_final:
            continue
        try:
            cancel_run(run)
        except RunRefused as exc:
            refused.append(f"{run.name}: {exc}")
        else:
            stopped += 1
    if stopped:
        flash(f"Stopping {stopped} run{'s' if stopped != 1 else ''}: each keeps its last checkpoint.", "info")
    for message in refused:
        flash(message, "error")
    if not stopped and not refused:
        flash("Every run of the sweep has already ended.", "info")
    return redirect(url_for("training.sweep", sweep_id=sweep_id))


@bp.route("/sweeps/<int:sweep_id>/delete", methods=["POST"])
@login_required
def delete_sweep(sweep_id: int):
    """The sweep and its runs' files; refused while a run goes on (registered models keep their GGUFs)."""
    sweep = _checked_sweep(sweep_id)
    runs = sweep_runs(sweep)
    for run in runs:
        reconcile_run(run)
    if any(not run.is_final for run in runs):
        flash("Cancel the sweep's runs before deleting it.", "error")
        return redirect(url_for("training.sweep", sweep_id=sweep_id))
    kept = []
    for run in runs:
        try:
            delete_run(run)
        except RunRefused as exc:  # resumed or retried from another tab meanwhile
            kept.append(f"{run.name}: {exc}")
    if kept:
        for message in kept:
            flash(message, "error")
        return redirect(url_for("training.sweep", sweep_id=sweep_id))
    db.session.delete(sweep)
    db.session.commit()
    flash(f"Deleted the sweep and its {len(runs)} runs (registered models keep their files).", "success")
    return redirect(url_for("training.index"))
