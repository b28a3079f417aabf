#!/usr/bin/env bash
# Create or update the project's virtual environment (.venv) from pyproject.toml and
# requirements.lock. Idempotent: does nothing when the environment matches both files.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VIGIL_VENV:-.venv}"
PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && \
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
      PYTHON="$candidate"; break
    fi
  done
fi
if [ -z "$PYTHON" ]; then
  echo "bootstrap: Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2
  exit 2
fi

want="$(cat pyproject.toml requirements.lock | sha256sum | cut -d' ' -f1)"
stamp="$VENV/.vigil-installed"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  # Packages match; the model files (face, expression) are checked every time (fast when present).
  exec "$VENV/bin/python" manage.py install_models --quiet
fi

echo "bootstrap: installing into $VENV (first run takes a few minutes)"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
# torch first and pinned: 2.13.0 is the CPU build; letting pip resolve torch would pull CUDA.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  -c requirements.lock -e ".[dev]"
"$VENV/bin/python" manage.py install_models --quiet
echo "$want" > "$stamp"
echo "bootstrap: done"
