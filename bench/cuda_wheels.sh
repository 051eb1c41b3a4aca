#!/usr/bin/env bash
# Fetch into .whl/ (git-ignored) the wheels that bench/cuda_training.py needs on the GPU machine and its
# image lacks, at the versions this checkout's .venv pins; see that script's docstring.
# The GPU machine's image already has torch (CUDA), numpy, safetensors, tokenizers, accelerate, PyYAML,
# Jinja2, Werkzeug and the like; a call carries at most 64 MiB, so only the rest travels, and the
# bitsandbytes wheel (43 MB: kernels for every CUDA release) keeps only the CUDA 13 kernels that
# torch 2.11+cu130 there loads.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES=(
  transformers huggingface_hub peft trl datasets dill multiprocess regex fsspec
  flask itsdangerous blinker flask-sqlalchemy sqlalchemy flask-login flask-wtf wtforms flask-htmx
  flask-limiter limits deprecated ordered-set flask-migrate alembic mako
  pydantic pydantic-core annotated-types typing-inspection
  jsonschema jsonschema-specifications referencing rpds-py rfc3339-validator
  httpx2 httpcore2 truststore trio outcome
)
pins=(bitsandbytes==0.50.2)  # not in .venv: CPU workers never load it
for name in "${PACKAGES[@]}"; do
  pins+=("$name==$(.venv/bin/python -c 'import sys, importlib.metadata as m; print(m.version(sys.argv[1]))' "$name")")
done
rm -rf .whl && mkdir .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
  -d .whl "${pins[@]}"
# Keep bitsandbytes' CUDA 13 and CPU kernels only (unpacked there with zipfile, so RECORD does not matter).
for wheel in .whl/bitsandbytes-*.whl; do
  zip -q -d "$wheel" 'bitsandbytes/libbitsandbytes_cuda1[12]*' 'bitsandbytes/libbitsandbytes_rocm*' || true
done
du -sh .whl
