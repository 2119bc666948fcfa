#!/usr/bin/env bash
# Set up (scripts/setup.sh), then train: `bash scripts/train.sh [CONFIG] [OVERRIDES...]`.
# Default: configs/baseline.yaml on the bundled MAESTRO sample. Checkpoints go to checkpoints/<config>/,
# TensorBoard logs to logs/ (`tensorboard --logdir logs`).
set -euo pipefail
cd "$(dirname "$0")/.."
# Skip the install (~16 s) when nothing changed: a stamp keyed on pyproject.toml, the Python and this
# checkout (in .cache/, which git ignores), and musicrnn importing from here with torch present.
PY="${PYTHON:-$(command -v python || command -v python3)}"
KEY="$(sha256sum pyproject.toml | cut -d' ' -f1) $PY $PWD"
STAMP=.cache/setup.stamp
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$KEY" ]] && "$PY" -c 'import importlib.util as u, os, sys, musicrnn
sys.exit(0 if u.find_spec("torch") and os.path.dirname(os.path.dirname(os.path.abspath(musicrnn.__file__))) == os.getcwd() else 1)' 2>/dev/null; then
  echo "setup: up to date (pyproject.toml unchanged), skipping the install; delete $STAMP to force it" >&2
else
  bash scripts/setup.sh
  mkdir -p .cache && echo "$KEY" > "$STAMP"
fi
CONFIG="configs/baseline.yaml"
if [[ $# -gt 0 && "$1" != --* ]]; then CONFIG="$1"; shift; fi
exec python -m musicrnn.fit --config "$CONFIG" "$@"
