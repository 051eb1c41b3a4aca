"""A fake Hugging Face Hub on loopback: just enough of the API for `HfApi.create_repo` + `create_commit`
(huggingface_hub 2.4.0), so pushes are tested over real HTTP without the internet.

Routes (every one wants `Authorization: Bearer <token>`, else 401 the way the Hub words it):
    POST /api/repos/create                      409 with the repo's url when it exists (exist_ok relies on it)
    GET  /api/models/{ns}/{name}[/revision/r]   repo_info (create_repo's 401/403 fallback, no-op commits)
    POST /api/validate-yaml                     create_commit checks README.md's metadata first
    POST /api/models/{ns}/{name}/preupload/r    every file "regular", with the oid of the stored copy if any
    POST /api/models/{ns}/{name}/commit/r       ndjson: a header line, then inline base64 files
    GET  /api/datasets/{ns}/{name}/tree/r       list_repo_tree (recursive): every file with its size
    GET  /datasets/{ns}/{name}/resolve/r/path   a file's bytes (hf_hub_url)

The two reads answer without a token for a public repo, as the Hub does; a wrong token is still a 401.

Answering "regular" keeps huggingface_hub off LFS and hf_xet: file contents travel inside the commit. An LFS
pointer in a commit is refused (400), and any other request is answered 404 and recorded in `.unknown`, so a
test can assert the push took exactly this path.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

DEFAULT_TOKEN = "hf_test_fake_hub_write_token"
TOKEN_OWNER = "fake-user"  # the namespace of a repo created without one
BAD_CREDENTIALS = "Invalid credentials in Authorization header"  # huggingface_hub keys on this exact text

REPO = r"(?P<repo>[^/]+/[^/]+)"
KIND = r"(?P<kind>models|datasets)"
ROUTES = [
    ("POST", re.compile(r"/api/repos/create"), "create_repo"),
    ("POST", re.compile(r"/api/validate-yaml"), "validate_yaml"),
    ("GET", re.compile(rf"/api/{KIND}/{REPO}(?:/revision/[^/]+)?"), "repo_info"),
    ("POST", re.compile(rf"/api/{KIND}/{REPO}/preupload/[^/]+"), "preupload"),
    ("POST", re.compile(rf"/api/{KIND}/{REPO}/commit/[^/]+"), "commit"),
    ("GET", re.compile(rf"/api/{KIND}/{REPO}/tree/[^/]+(?:/(?P<path>.+))?"), "tree"),
    ("GET", re.compile(rf"/(?P<kind>datasets)/{REPO}/resolve/[^/]+/(?P<path>.+)"), "resolve"),
]
PUBLIC_READS = frozenset({"tree", "resolve"})


def git_blob_oid(content: bytes) -> str:
    """What huggingface_hub compares a regular file's preupload oid with (`sha.git_hash`)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class HubError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


@dataclass
class FakeHub:
    """The Hub's state: `repos[repo_id]` (a dataset repo's key is "datasets/owner/name") = {"private": bool,
    "files": {path: bytes}, "commits": [oid, …], "messages": [summary, …]}, commits oldest first."""

    url: str
    token: str
    repos: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)  # "POST /api/repos/create", in arrival order
    unknown: list[str] = field(default_factory=list)  # requests no route answered
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            self.requests.append(f"{method} {path}")
            authorization = headers.get("Authorization")
            for route_method, pattern, name in ROUTES:
                match = pattern.fullmatch(path)
                if match and method == route_method:
                    repo_id = unquote(match.group("repo")) if "repo" in pattern.groupindex else None
                    if repo_id and match.group("kind") == "datasets":
                        repo_id = f"datasets/{repo_id}"  # dataset repos live beside model repos
                    public = (
                        name in PUBLIC_READS
                        and authorization is None
                        and not self.repos.get(repo_id, {"private": True})["private"]
                    )
                    if authorization != f"Bearer {self.token}" and not public:
                        raise HubError(401, BAD_CREDENTIALS, {"X-Error-Message": BAD_CREDENTIALS})
                    if "path" in pattern.groupindex:
                        return getattr(self, name)(repo_id, unquote(match.group("path") or ""))
                    return getattr(self, name)(repo_id, body)
            if authorization != f"Bearer {self.token}":
                raise HubError(401, BAD_CREDENTIALS, {"X-Error-Message": BAD_CREDENTIALS})
            self.unknown.append(f"{method} {path}")
            raise HubError(404, f"fake hub: no route for {method} {path}")

    def _repo(self, repo_id: str) -> dict[str, Any]:
        if repo_id not in self.repos:
            raise HubError(404, "Repository not found", {"X-Error-Code": "RepoNotFound"})
        return self.repos[repo_id]

    def create_repo(self, _repo_id: None, body: bytes) -> tuple[int, dict[str, str], Any]:
        payload = json.loads(body)
        kind = payload.get("type", "model")
        if kind not in ("model", "dataset"):
            raise HubError(400, f"fake hub: only model and dataset repos, not {kind}")
        repo_id = f"{payload.get('organization') or TOKEN_OWNER}/{payload['name']}"
        key = f"datasets/{repo_id}" if kind == "dataset" else repo_id
        answer = {
            "url": f"{self.url}/{key}",
            "name": repo_id,
            "id": hashlib.sha1(key.encode()).hexdigest(),
        }
        if key in self.repos:
            return 409, {}, {"error": f"You already created this {kind} repo", **answer}
        private = payload.get("visibility") == "private"
        self.repos[key] = {"private": private, "files": {}, "commits": [], "messages": []}
        return 200, {}, answer

    def validate_yaml(self, _repo_id: None, body: bytes) -> tuple[int, dict[str, str], Any]:
        return 200, {}, {"errors": [], "warnings": []}

    def repo_info(self, repo_id: str, _body: bytes) -> tuple[int, dict[str, str], Any]:
        repo = self._repo(repo_id)
        return (
            200,
            {},
            {
                "id": repo_id.removeprefix("datasets/"),
                "modelId": repo_id.removeprefix("datasets/"),
                "private": repo["private"],
                "sha": repo["commits"][-1] if repo["commits"] else None,
                "siblings": [{"rfilename": path} for path in sorted(repo["files"])],
            },
        )

    def preupload(self, repo_id: str, body: bytes) -> tuple[int, dict[str, str], Any]:
        stored = self._repo(repo_id)["files"]
        files = []
        for file in json.loads(body)["files"]:
            answer = {"path": file["path"], "uploadMode": "regular", "shouldIgnore": False}
            if file["path"] in stored:  # lets huggingface_hub drop unchanged files from the commit
                answer["oid"] = git_blob_oid(stored[file["path"]])
            files.append(answer)
        return 200, {}, {"files": files}

    def add_dataset(self, repo_id: str, files: dict[str, bytes], private: bool = False) -> None:
        """A dataset repo with these files, as if someone had pushed it."""
        with self.lock:
            self.repos[f"datasets/{repo_id}"] = {
                "private": private,
                "files": dict(files),
                "commits": [hashlib.sha1(repo_id.encode()).hexdigest()],
                "messages": ["initial"],
            }

    def tree(self, repo_id: str, folder: str) -> tuple[int, dict[str, str], Any]:
        files = self._repo(repo_id)["files"]
        prefix = folder.rstrip("/") + "/" if folder else ""
        entries = [
            {"type": "file", "path": path, "size": len(data), "oid": git_blob_oid(data)}
            for path, data in sorted(files.items())
            if path.startswith(prefix)
        ]
        if folder and not entries:
            raise HubError(404, f"{folder} does not exist", {"X-Error-Code": "EntryNotFound"})
        return 200, {}, entries

    def resolve(self, repo_id: str, path: str) -> tuple[int, dict[str, str], Any]:
        files = self._repo(repo_id)["files"]
        if path not in files:
            raise HubError(404, "Entry not found", {"X-Error-Code": "EntryNotFound"})
        return 200, {"Content-Type": "application/octet-stream"}, files[path]

    def commit(self, repo_id: str, body: bytes) -> tuple[int, dict[str, str], Any]:
        repo = self._repo(repo_id)
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "fake hub: a commit starts with its header line")
        files = dict(repo["files"])
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file" and value.get("encoding") == "base64":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {path: data for path, data in files.items() if not path.startswith(prefix)}
            else:  # lfsFile would need an LFS / xet upload first: this fake stores inline files only
                raise HubError(400, f"fake hub: cannot take a {key!r} line ({value.get('path')})")
        oid = hashlib.sha1(body + (repo["commits"][-1] if repo["commits"] else "").encode()).hexdigest()
        repo["files"] = files
        repo["commits"].append(oid)
        repo["messages"].append(lines[0]["value"]["summary"])
        answer = {"commitUrl": f"{self.url}/{repo_id}/commit/{oid}", "commitOid": oid, "pullRequestUrl": None}
        return 200, {}, answer


def _handler(hub: FakeHub, connections: set[socket.socket]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as httpx2's pool expects

        def setup(self) -> None:
            super().setup()
            connections.add(self.connection)

        def finish(self) -> None:
            connections.discard(self.connection)
            super().finish()

        def do_GET(self) -> None:  # noqa: N802
            self._answer("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._answer("POST")

        def do_PUT(self) -> None:  # noqa: N802
            self._answer("PUT")

        def do_DELETE(self) -> None:  # noqa: N802
            self._answer("DELETE")

        def _answer(self, method: str) -> None:
            body = self._read_body()
            try:
                status, headers, payload = hub.handle(method, urlsplit(self.path).path, self.headers, body)
            except HubError as error:
                status, headers, payload = error.status, error.headers, {"error": str(error)}
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()  # the blank line after the last chunk
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # the requests are in hub.requests

    return Handler


@contextmanager
def fake_hub(token: str = DEFAULT_TOKEN) -> Iterator[FakeHub]:
    """Serve a fresh, empty fake Hub on a free loopback port for the block; `.url` is the endpoint."""
    connections: set[socket.socket] = set()
    hub = FakeHub(url="", token=token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub, connections))
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    # A short poll so leaving the block (shutdown waits for the loop to notice) takes no half second.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-hub", daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        for connection in list(connections):  # idle keep-alive connections would hold their threads
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        thread.join(timeout=5)
