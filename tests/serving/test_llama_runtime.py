"""llama.cpp builds with AMX kernels crash on some CPUs: models are then loaded without AMX buffers."""

from __future__ import annotations

import llama_cpp.llama_cpp as native

from app.serving.default_model import default_gguf_path
from app.serving.llama_runtime import keep_off_amx, llama_has_amx, llama_system_info, open_llama


def test_the_build_is_read_and_amx_builds_load_without_extra_buffers():
    assert "CPU :" in llama_system_info()
    guarded = keep_off_amx()
    assert guarded == llama_has_amx()
    assert native.llama_model_default_params().use_extra_bufts is not guarded
    assert keep_off_amx() == guarded  # idempotent


def test_a_model_opened_through_the_guard_generates():
    # On an AMX machine whose threads lack tile permission this decode is where an unguarded load dies.
    llama = open_llama(model_path=str(default_gguf_path()), n_ctx=512, n_threads=2, verbose=False)
    try:
        result = llama.create_completion("The capital of France is", max_tokens=4, temperature=0.0)
        assert result["usage"]["completion_tokens"] >= 1
    finally:
        llama.close()
