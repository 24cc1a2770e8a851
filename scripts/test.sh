#!/usr/bin/env bash
# Quick start, command 2: run the whole test suite (unit, end to end, security, suites
# proven by verify). Extra arguments go to pytest, e.g. `bash scripts/test.sh -k config`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/slurm.sh install   # slurm-wlm + munge for tests/e2e/test_slurm.py (which starts and stops the daemons)
exec .venv/bin/python -m pytest "$@"
