#!/usr/bin/env bash
# Set up (scripts/ensure_setup.sh: skipped when nothing changed), then train:
# `bash scripts/train.sh [CONFIG] [OVERRIDES...]`.
# Default: configs/baseline.yaml on the bundled MAESTRO sample. Checkpoints go to checkpoints/<config>/,
# TensorBoard logs to logs/ (`tensorboard --logdir logs`).
# One torch thread unless OMP_NUM_THREADS is set: on a busy 2-core machine torch's default of two
# threads spins against the other work and trains several times slower (README "Threads").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_setup.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-${OMP_NUM_THREADS:-1}}"
echo "train: $OMP_NUM_THREADS torch thread(s) (set OMP_NUM_THREADS to change)" >&2
CONFIG="configs/baseline.yaml"
if [[ $# -gt 0 && "$1" != --* ]]; then CONFIG="$1"; shift; fi
exec python -m musicrnn.fit --config "$CONFIG" "$@"
