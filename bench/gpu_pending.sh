#!/usr/bin/env bash
# The GPU numbers still open, in one run on a lent H100/H200 (JAX; about 5 minutes of the session's 15):
#   issue 11: an epoch of S3-Rec Beauty per sequence model (goal <= 1 s) -> sequences-beauty-jax-gpu.json
#   issue 13: data-parallel MF on the large shop over the machine's GPUs  -> scale-jax-gpu.json
# Here first (both paths are ignored by git, so they travel only when carried):
#   bash ../shared/tools/device-wheels.sh && cp -r ../shared/datasets/s3rec-amazon-beauty datasets/
# Then through the device tool, from the repository root:
#   command "bash bench/gpu_pending.sh", carry [".whl", "datasets/s3rec-amazon-beauty"], timeout_s 540
# Each part has its own time limit, so one that hangs or fails still leaves the other's JSON in $OUT.
set -uo pipefail
source bench/gpu_env.sh || exit 1
export RECSYS_TF_DATA=datasets RECSYS_TF_OFFLINE=1 RECSYS_TF_PROGRESS=0
out="${OUT:-/tmp}"
timeout 240 python3 bench/bench_sequences.py --out "$out" 2>&1 | tee "$out/gpu-sequences.log" | grep -v "^I0000"
echo "sequences: exit ${PIPESTATUS[0]}"
timeout 200 python3 bench/gpu_scale.py 2>&1 | tee "$out/gpu-scale.log" | grep -v "^I0000"
echo "scale: exit ${PIPESTATUS[0]}"
cp bench/results/scale-jax-gpu.json "$out/" 2>/dev/null || echo "scale: no JSON (see gpu-scale.log)"
