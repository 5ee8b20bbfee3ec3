#!/usr/bin/env bash
# README's main command. Until the pretraining demo lands this runs the core end-to-end example.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/python -m minirob.examples.core_demo "$@"
