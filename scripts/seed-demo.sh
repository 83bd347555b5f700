#!/usr/bin/env bash
# Install netsleuth and run it on the shipped seed incident.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e .
netsleuth trace --node examples/seed-incident/nodes/admin --from host --to 10.96.0.1:443
