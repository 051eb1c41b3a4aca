"""`flask serve` (what `make run` runs): migrations, embedded Redis, a worker and gunicorn, all
stopped by Ctrl-C. Runs the real command on a free port with a fresh instance folder."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from http.cookiejar import CookieJar
from urllib.parse import urlencode

import pytest

from app.config import PROJECT_ROOT, embedded_redis_socket
from tests.conftest import flask_command


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout} s")


@pytest.mark.slow
def test_serve_runs_everything_and_ctrl_c_stops_it(tmp_path):
    process, port, env = _start_serve(tmp_path)
    instance = tmp_path / "instance"
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(base + "/healthz")
        assert (instance / "toolsmith.db").exists(), "migrations should have created the SQLite database"
        assert embedded_redis_socket(instance).exists(), "the embedded Redis should listen on its socket"

        # A visitor registers and queues a system check, which the worker started by serve runs.
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        page = opener.open(base + "/auth/register").read().decode()
        token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
        form = {
            "email": "first@example.com",
            "password": "password123",
            "confirm": "password123",
            "csrf_token": token,
        }
        home = opener.open(base + "/auth/register", data=urlencode(form).encode()).read().decode()
        assert "first@example.com" in home and "Jobs" in home
        opener.open(base + "/jobs/system-check", data=urlencode({"csrf_token": token}).encode())
        deadline = time.monotonic() + 60
        while "succeeded" not in (jobs := opener.open(base + "/jobs/").read().decode()):
            assert time.monotonic() < deadline, jobs
            time.sleep(1)

        # A long job is running when the operator stops serve: its process must go down with the worker
        # (RQ runs it in its own process group, so killing the worker alone would orphan it).
        horse_pid = _start_long_job(env)
    finally:
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        try:
            process.wait(timeout=45)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    output = (tmp_path / "serve.log").read_text()
    assert "Stopped embedded Redis." in output, output[-3000:]
    with pytest.raises(ProcessLookupError):
        os.kill(horse_pid, 0)  # the job's process is gone, not left running on its own
    assert not embedded_redis_socket(instance).exists() or not _redis_alive(instance)
    with pytest.raises(OSError):
        urllib.request.urlopen(base + "/healthz", timeout=2)
    # Nothing of the web server is left: a gunicorn worker its master abandoned held the port, silent.
    assert not _web_server_left(port)


def _start_long_job(env: dict[str, str]) -> int:
    """Queue a two-minute job on serve's own database and Redis; the pid of its work process once running."""
    script = (
        "import sys, time\n"
        "from app import create_app\n"
        "from app.extensions import db\n"
        "from app.models import BackgroundJob\n"
        "from app.queueing import enqueue_job\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        "    job = enqueue_job(owner_id=1, kind='test', title='long', "
        "func='tests.background.job_functions.count_slowly', args=(120,))\n"
        "    for _ in range(120):\n"
        "        db.session.expire_all()\n"
        "        pid = db.session.get(BackgroundJob, job.id).worker_pid\n"
        "        if pid:\n"
        "            print(pid)\n"
        "            sys.exit(0)\n"
        "        time.sleep(0.5)\n"
        "sys.exit('the job never started')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return int(done.stdout.strip().splitlines()[-1])


def _redis_alive(instance) -> bool:
    from app.embedded_redis import EmbeddedRedis

    return EmbeddedRedis(embedded_redis_socket(instance), instance / "redis").is_running()


def _start_serve(tmp_path) -> tuple[subprocess.Popen, int, dict[str, str]]:
    """`flask serve` on a free port with a fresh instance folder (tmp_path/instance), logging to
    tmp_path/serve.log, in its own session (a test can signal its whole group): (process, port, env)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")}
    env.update(INSTANCE_PATH=str(tmp_path / "instance"), PORT=str(port), PYTHONUNBUFFERED="1")
    with open(tmp_path / "serve.log", "wb") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            flask_command("serve"), cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    return process, port, env


def _web_server_left(port: int) -> bool:
    """Whether any gunicorn process of this port is still alive (a worker its master abandoned holds it)."""
    left = subprocess.run(["pgrep", "-f", "--", f"--bind 127.0.0.1:{port} "], capture_output=True, text=True)
    assert left.returncode in (0, 1), left.stderr  # 2 would be a usage error, not "nothing left"
    return left.returncode == 0


@pytest.mark.slow
def test_the_web_server_does_not_outlive_a_killed_serve(tmp_path):
    """SIGKILL skips serve's clean-up; gunicorn, in a process group of its own, must still go."""
    from app.embedded_redis import EmbeddedRedis

    process, port, _ = _start_serve(tmp_path)
    instance = tmp_path / "instance"
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz")
        assert _web_server_left(port)
        process.kill()  # serve alone, as the OOM killer or `kill -9` would
        process.wait(timeout=10)
        deadline = time.monotonic() + 30
        while _web_server_left(port):
            assert time.monotonic() < deadline, "gunicorn outlived serve"
            time.sleep(0.5)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # its RQ worker
        subprocess.run(["pkill", "-9", "-f", "--", f"--bind 127.0.0.1:{port} "])  # if the test failed
        EmbeddedRedis(embedded_redis_socket(instance), instance / "redis").stop()
