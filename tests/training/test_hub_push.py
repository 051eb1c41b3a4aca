"""Pushing a trained model to the Hub through the real huggingface_hub client, against a fake Hub on loopback:
the files land in one commit, a repo that exists is fine, and each failure reads as a sentence without the
token."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from jobs.training.hub_push import OFFLINE, HubPushError, push_to_hub
from tests.hub_server import HubError, fake_hub

TOKEN = "hf_test_write_token_7f3a9c"
CARD = "---\nlicense: apache-2.0\nbase_model: HuggingFaceTB/SmolLM2-135M-Instruct\n---\n# run1\n\nA test.\n"


@pytest.fixture(autouse=True)
def no_ambient_hub_settings(monkeypatch):
    """Only the token a test passes may reach a server, and this machine's offline switch does not apply."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)


@pytest.fixture
def model_files(tmp_path) -> tuple[Path, dict[str, Path]]:
    """A merged-model folder (config, tokenizer config, safetensors, a tool cache to skip) and one GGUF."""
    import torch
    from safetensors.torch import save_file

    merged = tmp_path / "merged"
    merged.mkdir()
    (merged / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 3}))
    (merged / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages }}"}))
    save_file(
        {"lm_head.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3)}, merged / "model.safetensors"
    )
    (merged / ".cache" / "huggingface").mkdir(parents=True)
    (merged / ".cache" / "huggingface" / "download.lock").write_text("")
    gguf = tmp_path / "run1-Q4_K_M.gguf"
    gguf.write_bytes(b"GGUF" + bytes(range(64)))
    return merged, {"Q4_K_M": gguf}


def push(hub_url: str, model_files, token: str = TOKEN, **overrides):
    merged, ggufs = model_files
    arguments = dict(
        private=True, ggufs=ggufs, merged_dir=merged, model_card=CARD, endpoint=hub_url, timeout=5
    )
    return push_to_hub(token, overrides.pop("repo_id", "tester/run1"), **{**arguments, **overrides})


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_push_commits_merged_model_ggufs_and_card_inline(model_files):
    from safetensors.torch import load

    merged, ggufs = model_files
    with fake_hub(TOKEN) as hub:
        result = push(hub.url, model_files)

    repo = hub.repos["tester/run1"]
    assert repo["private"] is True
    expected = ["README.md", "config.json", "model.safetensors", "run1-Q4_K_M.gguf", "tokenizer_config.json"]
    assert sorted(repo["files"]) == sorted(result.files) == expected
    assert repo["files"]["README.md"] == CARD.encode()
    assert repo["files"]["run1-Q4_K_M.gguf"] == ggufs["Q4_K_M"].read_bytes()
    assert repo["files"]["config.json"] == (merged / "config.json").read_bytes()
    assert load(repo["files"]["model.safetensors"])["lm_head.weight"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert repo["messages"] == ["Toolsmith: 5 files"]
    assert result.repo_id == "tester/run1"
    assert result.url == f"{hub.url}/tester/run1"
    assert result.commit == repo["commits"][0]
    # Contents went inline in the commit: no LFS batch, no xet token, nothing else.
    assert hub.requests == [
        "POST /api/repos/create",
        "POST /api/validate-yaml",
        "POST /api/models/tester/run1/preupload/main",
        "POST /api/models/tester/run1/commit/main",
    ]


def test_pushing_again_to_an_existing_repo_works(model_files):
    with fake_hub(TOKEN) as hub:
        first = push(hub.url, model_files, private=False)
        unchanged = push(hub.url, model_files, private=False)
        changed = push(hub.url, model_files, private=False, model_card=CARD + "\nRetrained.\n")

    repo = hub.repos["tester/run1"]
    assert repo["private"] is False
    assert unchanged.commit == first.commit  # nothing changed: huggingface_hub makes no empty commit
    assert changed.commit == repo["commits"][-1] != first.commit
    assert len(repo["commits"]) == 2
    assert repo["files"]["README.md"].endswith(b"Retrained.\n")
    assert hub.requests.count("POST /api/repos/create") == 3 and not hub.unknown


def test_a_refused_token_is_named_without_being_shown(model_files):
    wrong = "hf_wrong_token_d41d8cd98f"
    with fake_hub(TOKEN) as hub, pytest.raises(HubPushError) as caught:
        push(hub.url, model_files, token=wrong)

    message = str(caught.value)
    assert message == "The Hub refused the token (HTTP 401): check it has write access."
    assert wrong not in message and TOKEN not in message
    assert hub.repos == {}


def test_an_unreachable_hub_fails_fast_with_a_plain_reason(model_files):
    started = time.monotonic()
    with pytest.raises(HubPushError) as caught:
        push(f"http://127.0.0.1:{closed_port()}", model_files, timeout=2)

    assert time.monotonic() - started < 5
    assert str(caught.value) == (
        "The Hugging Face Hub is unreachable from this worker (connection refused). "
        "The models stay registered here; push again later."
    )


def test_a_hub_that_never_answers_hits_the_timeout(model_files):
    with socket.socket() as silent:  # listens (the kernel completes the handshake) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        started = time.monotonic()
        with pytest.raises(HubPushError) as caught:
            push(f"http://127.0.0.1:{silent.getsockname()[1]}", model_files, timeout=0.5)

    assert time.monotonic() - started < 5
    assert "unreachable from this worker (no answer within 0.5 s)" in str(caught.value)


def test_the_hubs_own_words_are_shown_and_an_echoed_token_is_masked(model_files, monkeypatch):
    def refuse_commit(repo_id, body):
        raise HubError(422, f"Your push was rejected: invalid files (request by {TOKEN})")

    with fake_hub(TOKEN) as hub, pytest.raises(HubPushError) as caught:
        monkeypatch.setattr(hub, "commit", refuse_commit)
        push(hub.url, model_files)

    assert (
        str(caught.value)
        == "The Hub answered HTTP 422: Your push was rejected: invalid files (request by ***)"
    )


def test_offline_mode_is_named(model_files, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with fake_hub(TOKEN) as hub, pytest.raises(HubPushError) as caught:
        push(hub.url, model_files)
    assert str(caught.value) == OFFLINE == "Hugging Face Hub access is switched off here (HF_HUB_OFFLINE)."
    assert hub.requests == []


def test_problems_found_before_the_hub_is_asked(model_files, tmp_path):
    with fake_hub(TOKEN) as hub:
        with pytest.raises(HubPushError, match="run2-Q8_0.gguf is missing"):
            push(hub.url, model_files, ggufs={"Q8_0": tmp_path / "run2-Q8_0.gguf"})
        with pytest.raises(HubPushError, match="needs a Hugging Face token"):
            push(hub.url, model_files, token="")
        with pytest.raises(HubPushError, match="not a valid Hub repo id"):
            push(hub.url, model_files, repo_id="tester/run 1")
    assert hub.requests == []
