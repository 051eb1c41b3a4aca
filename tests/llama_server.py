"""Real servers for remote-provider tests: llama-cpp-python's OpenAI-compatible server, and tiny odd ones.

`llama_server(...)` runs llama-cpp-python's server (`llama_cpp.server`) on a free loopback port with a
real GGUF model; `serve_http(fn)` runs a stdlib HTTP server whose every answer comes from `fn`, for the
failures a real provider produces (non-JSON pages, 401s, slow answers, redirects).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO

STARTUP_TIMEOUT_S = 60.0
PORT_ATTEMPTS = 3
PROJECT_ROOT = Path(__file__).resolve().parents[1]
# `python -m llama_cpp.server`, kept off the AMX kernels that crash on some CPUs (as the app's loads are).
SERVER_MAIN = (
    "from app.serving.llama_runtime import keep_off_amx; keep_off_amx(); import runpy; "
    "runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)"
)


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it). Another process may take it before the
    caller binds it: `start_llama_server` retries on a clash; a test that needs a port to stay dead uses
    `refused_port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def refused_port() -> Iterator[int]:
    """A port that refuses connections for the whole block: bound but never listening, so the kernel
    answers every connection with a reset and no other server can take the port meanwhile."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def _tail(log: IO[bytes], limit: int = 4000) -> str:
    log.flush()
    text = Path(log.name).read_bytes().decode(errors="replace")
    return text[-limit:]


def start_llama_server(
    model_path: str | Path, alias: str, port: int | None = None, log: IO[bytes] | None = None
) -> tuple[subprocess.Popen, str]:
    """Start llama_cpp.server and wait until it answers; returns the process and its `.../v1` base URL.

    Without a `port`, a free one; should another process take it first, once more on another."""
    for attempt in range(PORT_ATTEMPTS):
        try:
            return _start_llama_server(model_path, alias, port or free_port(), log)
        except PortTaken:
            if port is not None or attempt == PORT_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


class PortTaken(RuntimeError):
    """llama_cpp.server could not bind its port: something else took it after `free_port` chose it."""


def _start_llama_server(
    model_path: str | Path, alias: str, port: int, log: IO[bytes] | None
) -> tuple[subprocess.Popen, str]:
    own_log = log is None
    log = log or tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log")
    command = [
        sys.executable, "-c", SERVER_MAIN,
        "--model", str(model_path),
        "--model_alias", alias,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", "2048",
        "--n_threads", "2",
    ]  # fmt: skip
    # A log file, not a pipe: a pipe nobody reads fills up and stalls the server mid-test.
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)
    process.log = log  # type: ignore[attr-defined]  # kept open (and alive) as long as the process
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if process.poll() is not None:
            said = _tail(log)
            if "address already in use" in said.lower():
                if own_log:
                    log.close()
                raise PortTaken(said)
            raise RuntimeError(f"llama_cpp.server exited with {process.returncode}:\n{said}")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
                if response.status == 200:
                    return process, base_url
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            stop_llama_server(process)
            waited = f"{STARTUP_TIMEOUT_S:.0f} s"
            raise RuntimeError(f"llama_cpp.server did not answer within {waited}:\n{_tail(log)}")
        time.sleep(0.25)


def stop_llama_server(process: subprocess.Popen) -> None:
    """Terminate the server (SIGTERM, then SIGKILL after 10 s) and close its log."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    log = getattr(process, "log", None)
    if log is not None:
        log.close()


@contextmanager
def llama_server(model_path: str | Path, alias: str, port: int | None = None) -> Iterator[str]:
    """Run llama_cpp.server for the duration of the block; yields its `.../v1` base URL."""
    process, base_url = start_llama_server(model_path, alias, port)
    try:
        yield base_url
    finally:
        stop_llama_server(process)


@dataclass
class HTTPRequestSeen:
    """One request an odd server received (tests assert on headers, e.g. that no token was sent)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HTTPAnswer:
    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[HTTPRequestSeen], HTTPAnswer]


@contextmanager
def serve_http(handler_fn: Handler, seen: list[HTTPRequestSeen] | None = None) -> Iterator[str]:
    """A stdlib HTTP server on 127.0.0.1 whose every answer is `handler_fn(request)`; yields its base URL.

    Requests are appended to `seen` when given. Handlers run in their own threads, so a handler that
    sleeps (the slow-server case) never holds up the test or the shutdown.
    """

    class _Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = HTTPRequestSeen(
                method=self.command,
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=self.rfile.read(length) if length else b"",
            )
            if seen is not None:
                seen.append(request)
            answer = handler_fn(request)
            body = answer.body.encode() if isinstance(answer.body, str) else answer.body
            try:
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up first (a timeout test): nothing to report

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep pytest output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.block_on_close = False
    # A short poll interval: shutdown() waits up to one interval, and tests start many of these servers.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="serve_http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
