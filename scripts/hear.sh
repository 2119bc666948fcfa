#!/usr/bin/env bash
# Hear the pretrained model: install (scripts/ensure_setup.sh: skipped when nothing changed), then generate
# 400 notes with the model that ships in the package to outputs/samples/pretrained.mid, and render
# outputs/samples/pretrained.wav with FluidSynth when it is installed (`apt install fluidsynth fluid-soundfont-gm`).
# Extra arguments go to `python -m musicrnn.sample` (e.g. --temperature 0.9 --seed 3 --png); a run without
# --seed prints the seed it drew ("pass --seed N to repeat"): `bash scripts/hear.sh --seed N` repeats it exactly.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_setup.sh
WAV=()
if command -v fluidsynth >/dev/null 2>&1; then WAV=(--wav); else
  echo "hear: FluidSynth not found: writing MIDI only (apt install fluidsynth fluid-soundfont-gm for a WAV)" >&2
fi
exec python -m musicrnn.sample --num-notes 400 --out outputs/samples/pretrained.mid "${WAV[@]}" "$@"
