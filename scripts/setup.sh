#!/usr/bin/env bash
# Set up the grading environment: a virtualenv in .venv with the pinned dependencies.
# Idempotent and quiet when everything is already there. Uses Debian's python3.11 when
# present: the sandbox runs student code as an unprivileged user, which cannot load an
# interpreter from root's home directory.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  if [ -x /usr/bin/python3.11 ]; then PYTHON=/usr/bin/python3.11; else PYTHON=$(command -v python3); fi
fi

# System packages the HTML report test uses (headless Chromium; skipped when present or not root).
# The sandbox needs none: it isolates the worker with kernel namespaces through ctypes.
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing ${need[*]} (apt)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null) \
    || echo "setup: could not install ${need[*]}; the tests that need them will say so"
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import autograder, torch, hypothesis, matplotlib, nbclient, ipykernel" >/dev/null 2>&1 \
   || [ pyproject.toml -nt .venv/.installed ]; then
  echo "setup: installing the pinned dependencies (torch==2.13.0 CPU, numpy, hypothesis, pytest, ...)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -c "import autograder, torch, hypothesis" 
  touch .venv/.installed
fi
