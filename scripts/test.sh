#!/usr/bin/env bash
# Runs every test: the test bed's own tests (pytest), then all Rust tests (unit, CLI, end-to-end on
# the local moto server) with cargo nextest. Installs the test bed first; nothing else is needed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup-testbed.sh
export MVL_TESTBED_PYTHON="$root/.venv/bin/python"
# The tests talk to 127.0.0.1 only; make sure no real credentials or endpoints leak in.
unset AWS_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_REGION AWS_DEFAULT_REGION
PYTHONPATH=testbed "$MVL_TESTBED_PYTHON" -m pytest -q testbed/tests
cargo nextest run --locked --no-fail-fast "$@"
