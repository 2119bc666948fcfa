#!/usr/bin/env bash
# Install musicrnn and its dependencies into the current Python (use a venv if you like:
# `python3 -m venv .venv && . .venv/bin/activate` first).
#
# torch is installed FIRST and pinned to 2.13.0: pip then keeps it, while an unpinned resolve would
# pull the default (multi-GB, CUDA) wheel. On the project machines pip's find-links holds the local
# 2.13.0+cpu wheel, which satisfies the pin. Elsewhere, for a CPU-only build, install torch from
# PyTorch's CPU wheel index first; GPU users install a CUDA build of torch (>=2.2,<2.15) first. Either
# way, then run this with MUSICRNN_SKIP_TORCH=1 and pip keeps the torch you have.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$(command -v python || command -v python3)}"
PIP=("$PY" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore)
if [[ "${MUSICRNN_SKIP_TORCH:-0}" != 1 ]]; then
  if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.__version__.split("+")[0] == "2.13.0" else 1)' 2>/dev/null; then
    echo "setup: installing torch==2.13.0 (CPU)" >&2
    "${PIP[@]}" "torch==2.13.0"
  fi
fi
echo "setup: installing musicrnn (editable) with dev extras" >&2
"${PIP[@]}" -e ".[dev]"
