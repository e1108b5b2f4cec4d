#!/usr/bin/env bash
# Makes the int8 copy of an emotion model that annotate and live use by default (see the README's
# Models section): scripts/quantize-model.py in a virtual environment with the quantization tools
# pinned to the ONNX Runtime that emolens ships, so the copy is made the same way every time.
#   scripts/quantize-model.sh MODEL.onnx OUT.onnx [--images DIR] [--count N] [--seed S]
# Needs python3 with venv (Debian: apt install python3-venv) and the PyPI registry.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${XDG_CACHE_HOME:-$HOME/.cache}/emolens/quantize-venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || { echo "quantize-model: python3 -m venv failed; on Debian: apt install python3-venv" >&2; exit 1; }
  "$venv/bin/pip" install --quiet onnxruntime==1.31.1 onnx==1.23.2 pillow==12.0.0 numpy==2.3.5 sympy==1.14.0
fi
exec "$venv/bin/python" scripts/quantize-model.py "$@"
