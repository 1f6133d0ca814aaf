#!/usr/bin/env bash
# Data-parallel training on the lent GPU machine (issue 13), run once through the device tool with .whl carried:
#   bash bench/gpu_scale.sh
set -euo pipefail
source bench/gpu_env.sh
python3 bench/gpu_scale.py "$@"
cp bench/results/scale-jax-gpu.json "${OUT:-/tmp}/"
