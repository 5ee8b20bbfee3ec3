#!/usr/bin/env bash
# Create .venv (if missing) and install minirob with its dev extras.
# torch is pinned to the CPU build 2.13.0 first: an unpinned torch would pull several GB of CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.minirob-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
    .venv/bin/python -m pip install -q "torch==2.13.0" 2>&1 | grep -v "is ignored" || true
    .venv/bin/python -m pip install -q -e ".[dev]" 2>&1 | grep -v "is ignored" || true
    .venv/bin/python -c "import torch, minirob; print('minirob', minirob.__version__, 'torch', torch.__version__)"
    touch "$stamp"
fi
