"""What the worker's processor can do for training (torch only: cheap to import)."""

from __future__ import annotations


def cpu_has_native_bf16() -> bool:
    """AVX-512 BF16 or AMX: bf16 matrix products run in hardware. Elsewhere torch emulates them, slower
    than float32 (bench/training_throughput.py). Torch's own probes are private, hence the fallback."""
    import torch

    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)
