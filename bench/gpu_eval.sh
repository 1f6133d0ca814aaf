#!/usr/bin/env bash
# Evaluation on the GPU (bench/bench_eval.py) and the device-evaluation tests on the JAX backend, run on a
# lent H100/H200 like bench/gpu_check.sh (with .whl carried). Writes eval-jax-gpu.json and the test log to $OUT.
set -euo pipefail
source bench/gpu_env.sh
python3 bench/bench_eval.py --repeats 5
cp bench/results/eval-jax-gpu.json "${OUT:-/tmp}/"
RECSYS_TF_OFFLINE=1 RECSYS_TF_PROGRESS=0 python3 -m pytest -q -p no:cacheprovider tests/test_device_eval.py \
  tests/test_trust_inputs.py 2>&1 | tee "${OUT:-/tmp}/gpu-tests.log" | tail -15 || true
