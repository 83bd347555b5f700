#!/usr/bin/env bash
# Install netsleuth with its test tools and run the whole suite: lint, types, tests.
# Lab tests (real kernel, network namespaces) run when this is root with iproute2/iptables;
# elsewhere they are skipped with the reason printed. Usage: scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
echo "== ruff"; python3 -m ruff check src tests benchmarks
echo "== mypy"; python3 -m mypy
echo "== pytest"; python3 -m pytest "$@"
