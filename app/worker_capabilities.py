"""What each RQ worker can do (memory, CPU threads, CUDA), published in Redis for the web tier.

The linter needs it: QLoRA is refused at submit unless a connected `train` worker has a CUDA device,
and memory estimates are compared with the memory of the machine the worker runs on. A worker
publishes its report when it starts; the CUDA probe imports torch in a subprocess (seconds), so it
fills in shortly after and never delays the worker or runs torch's import in the forking parent.
Only reports of workers RQ still lists as alive count, so a dead worker's report is ignored.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from typing import Any

KEY_PREFIX = "toolsmith:worker-capabilities:"
REPORT_TTL_S = 7 * 24 * 3600
_CUDA_PROBE = (
    "import json, torch; ok = torch.cuda.is_available(); "
    "print(json.dumps({'cuda': ok, 'cuda_device': torch.cuda.get_device_name(0) if ok else None, "
    "'cuda_memory_bytes': torch.cuda.get_device_properties(0).total_memory if ok else None}))"
)


def basic_report(name: str) -> dict[str, Any]:
    import psutil

    return {
        "name": name,
        "memory_bytes": psutil.virtual_memory().total,
        "cpu_count": os.cpu_count(),
        "cuda": None,  # not probed yet
    }


def probe_cuda(timeout_s: float = 120.0) -> dict[str, Any]:
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CUDA_PROBE], capture_output=True, text=True, timeout=timeout_s, check=True
        )
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, OSError, ValueError, IndexError) as exc:
        return {"cuda": False, "cuda_error": f"{type(exc).__name__}: {exc}"[:300]}


def publish(connection: Any, name: str, report: dict[str, Any]) -> None:
    connection.set(KEY_PREFIX + name, json.dumps(report), ex=REPORT_TTL_S)


def publish_in_background(connection: Any, name: str) -> threading.Thread:
    report = basic_report(name)
    publish(connection, name, report)

    def probe() -> None:
        publish(connection, name, {**report, **probe_cuda()})

    thread = threading.Thread(target=probe, name="cuda-probe", daemon=True)
    thread.start()
    return thread


def train_worker_capabilities(queue_name: str = "train") -> list[dict[str, Any]] | None:
    """Reports of the live workers listening on `queue_name` (a worker without one counts, report-less);
    None when Redis cannot be reached (the linter then says so instead of failing the page)."""
    import redis
    from rq import Worker

    from app.queueing import get_queue, redis_connection

    connection = redis_connection()
    try:
        workers = Worker.all(connection=connection, queue=get_queue(queue_name))
        raw_reports = [connection.get(KEY_PREFIX + worker.name) for worker in workers]
    except redis.RedisError:
        return None
    reports = []
    for worker, raw in zip(workers, raw_reports, strict=True):
        try:
            report = json.loads(raw) if raw else {"name": worker.name}
        except ValueError:
            report = {"name": worker.name}
        reports.append(report)
    return reports
