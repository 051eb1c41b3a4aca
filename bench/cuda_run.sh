#!/usr/bin/env bash
# On the GPU machine, through the device tool: run with carry [".whl", "bench/.cuda"] (made here by
# bench/cuda_wheels.sh and `bench/cuda_training.py --prepare`). Unpacks the wheels over the image's
# packages and runs the CUDA training bench; extra arguments go to bench/cuda_training.py.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c "import glob, zipfile; [zipfile.ZipFile(w).extractall('/tmp/site') for w in sorted(glob.glob('.whl/*.whl'))]"
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
python3 bench/cuda_training.py --json "${OUT:-/tmp}/cuda_training.json" "$@"
