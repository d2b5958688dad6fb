#!/usr/bin/env bash
# The whole test command: installs everything into .venv, then lint, format check,
# strict typing, the docs build and the test suite (every async test on asyncio and trio).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
# Kite's official Node client, for tests/test_sandbox_official_node_client.py (skipped
# without node or the client)
if command -v npm >/dev/null 2>&1; then
  (cd tests/node && npm install --no-audit --no-fund --silent) \
    || echo "could not install Kite's Node client: its test will be skipped"
fi
echo "== ruff check";  .venv/bin/ruff check .
echo "== ruff format"; .venv/bin/ruff format --check .
echo "== mypy";        .venv/bin/mypy
if [ -f mkdocs.yml ]; then echo "== docs"; NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict -q -d .site; fi
echo "== pytest";      .venv/bin/python -m pytest -p no:cacheprovider "$@"
