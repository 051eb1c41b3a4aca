"""Open llama.cpp models so that they run on every x86 CPU, AMX ones included.

llama.cpp compiled on a Sapphire Rapids-class CPU (GGML_NATIVE) gains AMX kernels, and those crash with
SIGSEGV at the first decode on machines whose kernel has not granted AMX tile state to llama.cpp's
worker threads, virtual machines especially (ggml-org/llama.cpp#20824, #26954; seen here: every chat,
export check and evaluation died). The Makefile builds without AMX. A library that has it anyway (a
wheel built elsewhere, an old pip cache) is kept off it here: models load without the extra buffer types
(`use_extra_bufts = False`), so weights are not repacked into AMX tiles and the AVX-512 / AVX2 kernels
run. Checked on such a machine: the AMX build crashed, the same build with this guard answered.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_guard_lock = threading.Lock()
_guarded = False


@functools.cache
def llama_system_info() -> str:
    """What the loaded llama.cpp library was compiled with (`AVX2 = 1 | AMX_INT8 = 1 | ...`)."""
    import llama_cpp

    return llama_cpp.llama_print_system_info().decode(errors="replace").strip()


def llama_has_amx() -> bool:
    return "AMX_INT8 = 1" in llama_system_info()


def keep_off_amx() -> bool:
    """Make every later model load skip the AMX buffers when the library has them; True if it does."""
    global _guarded
    with _guard_lock:
        if _guarded:
            return True
        if not llama_has_amx():
            return False
        import llama_cpp.llama_cpp as native  # `Llama.__init__` calls this module's default_params

        if "use_extra_bufts" not in dict(native.llama_model_params._fields_):
            return False
        default_params = native.llama_model_default_params

        def without_extra_buffers() -> Any:
            params = default_params()
            params.use_extra_bufts = False
            return params

        native.llama_model_default_params = without_extra_buffers
        _guarded = True
        return True


def open_llama(**kwargs: Any) -> Any:
    """`llama_cpp.Llama(**kwargs)`, kept off AMX kernels where they would crash."""
    from llama_cpp import Llama

    keep_off_amx()
    return Llama(**kwargs)
