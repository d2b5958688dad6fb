#!/usr/bin/env bash
# The whole test command: installs everything into .venv, then lint, format check,
# strict typing, the docs build and the test suite (every async test on asyncio and trio).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
echo "== ruff check";  .venv/bin/ruff check .
echo "== ruff format"; .venv/bin/ruff format --check .
echo "== mypy";        .venv/bin/mypy
if [ -f mkdocs.yml ]; then echo "== docs"; NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict -q -d .site; fi
echo "== pytest";      .venv/bin/python -m pytest -p no:cacheprovider "$@"
