#!/usr/bin/env bash
# Set up (scripts/setup.sh), then train: `bash scripts/train.sh [CONFIG] [OVERRIDES...]`.
# Default: configs/baseline.yaml on the bundled MAESTRO sample. Checkpoints go to checkpoints/,
# TensorBoard logs to logs/ (`tensorboard --logdir logs`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
CONFIG="configs/baseline.yaml"
if [[ $# -gt 0 && "$1" != --* ]]; then CONFIG="$1"; shift; fi
exec python -m musicrnn.fit --config "$CONFIG" "$@"
