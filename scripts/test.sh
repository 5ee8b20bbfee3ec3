#!/usr/bin/env bash
# README's test command: install from scratch if needed, then run the whole suite.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -m "not slow"` for a quick local run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
set +e
.venv/bin/python -m pytest -n 2 --dist loadgroup -q "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "error: pytest collected no tests (exit 5); treating as failure" >&2
    exit 1
fi
exit "$rc"
