#!/usr/bin/env bash
# Install netsleuth and run it on the shipped seed incident: the diagnosis, then the trace
# that proves it, then the same trace with the fix applied as a what-if.
set -uo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e . || exit 1
netsleuth diagnose examples/seed-incident
rc=$?
# diagnose exits 3 when it found a root cause: that is the expected result here.
[ "$rc" -eq 3 ] || { echo "seed-demo: diagnose exited $rc, expected 3 (root cause found)" >&2; exit 1; }
set -e
netsleuth trace --node examples/seed-incident/nodes/admin --from host --to 10.96.0.1:443
netsleuth trace --node examples/seed-incident/nodes/admin --from host --to 10.96.0.1:443 \
  --route-add '10.96.0.0/12 dev enp0s8'
