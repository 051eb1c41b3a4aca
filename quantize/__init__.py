"""Pure functions over paths: merge a LoRA adapter, convert HF → GGUF, quantize, sanity-check.

Imports nothing from the rest of the project, so workers and the `python -m quantize` CLI can use it
alone. Heavy libraries (torch, peft, llama-cpp-python) are imported inside the functions.

    export_model(base_dir, out_dir, ["Q4_K_M", "F16"], adapter_dir=adapter)  # → ExportResult
"""

from quantize.errors import ExportError
from quantize.export import ExportResult, export_model
from quantize.gguf import QUANT_TYPES, check_gguf, convert_to_gguf, quantize_gguf
from quantize.merge import merge_adapter

__all__ = [
    "QUANT_TYPES",
    "ExportError",
    "ExportResult",
    "check_gguf",
    "convert_to_gguf",
    "export_model",
    "merge_adapter",
    "quantize_gguf",
]
