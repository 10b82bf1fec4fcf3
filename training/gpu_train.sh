#!/usr/bin/env bash
# One time-bounded GPU training run that also generates its own data.
#
#   python -m training.pack_sources --out .devcarry/sources     # here: training sources, ~37 MB
#   OUT=/some/dir MINUTES=8 training/gpu_train.sh                # on the GPU machine
#
# The machine's CPUs generate fresh shards (training.generate, one process per core but
# the trainer's) while the GPU trains on the shards present, rescanning after each epoch;
# the run warm-starts from the committed weights. Checkpoint, logs and the generator's
# log land in $OUT. Recorded in docs/model-card.md ("GPU run").
set -euo pipefail
OUT=${OUT:-var/gpu}
MINUTES=${MINUTES:-8}
SOURCES=${SOURCES:-.devcarry/sources/manifest.json}
DATA=${DATA:-var/gpudata}
CORES=$(nproc)
GEN_WORKERS=$(( CORES > 6 ? CORES - 4 : 2 ))
mkdir -p "$OUT" "$DATA"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
OMP_NUM_THREADS=1 python3 -m training.generate --manifest "$SOURCES" --train 90000 --val 512 --eval 0 \
    --shard-size 96 --workers "$GEN_WORKERS" --out "$DATA" >"$OUT/generate.log" 2>&1 &
GEN=$!
trap 'kill $GEN 2>/dev/null || true' EXIT
python3 -m training.train --data "$DATA" --out "$OUT" --minutes "$MINUTES" --batch 64 --loaders 3 \
    --threads 2 --lr 2e-3 --backbone-lr 4e-4 --freeze 2 --init training/weights/idetex_lite.pt \
    --eval-minutes 2 --ckpt-minutes 1.5 --wait-minutes 3 --max-samples 120000 --val-max 512 --log-every 50
tail -3 "$OUT/generate.log"
