#!/usr/bin/env bash
# The GPU training measurement, run once on a lent H100/H200 (JAX and PyTorch, no TensorFlow, no network).
# Here first: bash ../shared/tools/device-wheels.sh   (puts keras, namex, optree wheels in .whl/)
# Then, through the device tool, from the repository root with .whl carried:  bash bench/gpu_check.sh
set -euo pipefail
source bench/gpu_env.sh
python3 bench/bench_train.py --samples 20000000 --batches 16384 65536 262144 "$@"
cp bench/results/train-jax-gpu.json "${OUT:-/tmp}/"
