#!/usr/bin/env bash
# The GPU measurement, run once on a lent H100/H200 (JAX and PyTorch, no TensorFlow, no network).
# Here first: bash ../shared/tools/device-wheels.sh   (puts keras, namex, optree wheels in .whl/)
# Then, through the device tool, from the repository root with .whl carried:  bash bench/gpu_check.sh
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
python3 bench/bench_train.py --samples 20000000 --batches 16384 65536 262144 "$@"
cp bench/results/train-jax-gpu.json "${OUT:-/tmp}/"
