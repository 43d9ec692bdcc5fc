#!/usr/bin/env bash
# The demo: mvl-monitor against a local AWS emulator, no AWS account needed.
# Installs the test bed (moto) into .venv, builds mvl-monitor, starts the emulator on 127.0.0.1, seeds
# 5 accounts x 10 counties x 48 h of Lambda logs (one account with a county below the 0.8 threshold
# now and then), runs `mvl-monitor collect` against it, and stops the emulator.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out="${1:-$root/demo-output}"

scripts/setup-testbed.sh
echo "demo: building mvl-monitor (the first build of the AWS SDK takes a few minutes)" >&2
cargo build --locked --quiet
bin="$root/target/debug/mvl-monitor"

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

PYTHONPATH=testbed .venv/bin/python -m mvl_testbed.server --port-file "$work/port" --query-latency 1 \
  2>"$work/server.log" &
server_pid=$!
for _ in $(seq 1 300); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || { echo "demo: the emulator did not start:" >&2; cat "$work/server.log" >&2; exit 1; }
endpoint="http://127.0.0.1:$(cat "$work/port")"
echo "demo: emulator running at $endpoint" >&2

now=$(date -u +%s); end=$(date -u -d "@$(( now - now % 3600 ))" +%Y-%m-%dT%H:%M:%SZ)
echo "demo: seeding 5 accounts x 10 counties x 48 h of log events ending $end" >&2
AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 PYTHONPATH=testbed \
  .venv/bin/python -m mvl_testbed.seed --endpoint "$endpoint" --out-dir "$work/seed" \
  --accounts 5 --counties 10 --hours 48 --end "$end" >/dev/null
mkdir -p "$out"
cp "$work/seed/accounts.yaml" "$out/accounts.yaml"
chmod 600 "$out/accounts.yaml"

echo "demo: running: mvl-monitor collect --accounts $out/accounts.yaml --endpoint-url $endpoint --range-hours 48 --end $end --out-dir $out" >&2
env -u AWS_PROFILE -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN AWS_EC2_METADATA_DISABLED=true \
  "$bin" collect --accounts "$out/accounts.yaml" --endpoint-url "$endpoint" \
  --range-hours 48 --end "$end" --out-dir "$out"
echo
echo "demo: done. The CSV and the PNG are in $out:"
ls -1 "$out"/metrics_*.csv "$out"/metrics_*.png | tail -n 2
