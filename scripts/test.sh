#!/usr/bin/env bash
# Install netsleuth with its test tools and run the whole suite: lint, types, tests.
# Lab tests (real kernel, network namespaces) run when this is root with iproute2/iptables;
# elsewhere they are skipped with the reason printed. Usage: scripts/test.sh [pytest args]
#
# The suite runs on the editable install (plain Python, what a developer edits), then once more
# on a regular install, whose datapath is compiled with mypyc (setup.py): every test that does
# not need the kernel, and the kernel-differential and seed lab tests that check the compiled
# simulator against the real kernel.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
echo "== ruff"; python3 -m ruff check src tests benchmarks setup.py
echo "== mypy"; python3 -m mypy
echo "== pytest (plain Python)"; python3 -m pytest "$@"
echo "== pytest (compiled datapath)"
compiled="$(mktemp -d)"
trap 'rm -rf "$compiled"' EXIT
python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$compiled" .
PYTHONPATH="$compiled" NETSLEUTH_EXPECT_COMPILED=1 python3 -m pytest "$@" -m "not lab"
PYTHONPATH="$compiled" NETSLEUTH_EXPECT_COMPILED=1 python3 -m pytest "$@" \
  tests/lab/test_differential.py tests/lab/test_seed_trace.py tests/lab/test_ipv6.py
