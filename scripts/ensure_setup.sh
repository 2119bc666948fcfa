#!/usr/bin/env bash
# Install (scripts/setup.sh) only when something changed: train.sh and hear.sh both run this first.
# The stamp in .cache/setup.stamp (git ignores .cache/) is keyed on pyproject.toml, the Python and this
# checkout; it also needs musicrnn importing from this checkout with torch present. Delete it to force
# an install.
set -euo pipefail
cd "$(dirname "$0")/.."
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
