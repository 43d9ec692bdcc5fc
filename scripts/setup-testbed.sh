#!/usr/bin/env bash
# Installs the local AWS test bed (moto server and the tools the tests and demo use) into .venv.
# Idempotent: reinstalls only when testbed/requirements.txt changed. Needs python3 (3.9+) and PyPI.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
req="$root/testbed/requirements.txt"
stamp="$venv/.requirements.sha256"

if [ ! -x "$venv/bin/python" ]; then
  echo "setup-testbed: creating $venv" >&2
  python3 -m venv "$venv"
fi
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup-testbed: installing $(basename "$req") into .venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
fi
