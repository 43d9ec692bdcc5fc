#!/usr/bin/env bash
# Benchmark harness for mvl-monitor against the local moto test bed (127.0.0.1 only).
#
#   bench/run.sh            # all scenarios: S1 S2 S3 S4 S5
#   bench/run.sh S1 S5      # only those
#
# Environment knobs:
#   BENCH_END=2026-12-03T00:00:00Z   end of the collected range (default: now, floored to the hour)
#   BENCH_SKIP_INSTALL=1             do not pip-install requirements
#   BENCH_SKIP_BUILD=1               do not run cargo build (use target/release/mvl-monitor as is)
#   BENCH_S4_PLOT=0                  S4: pass --no-plot (default 1: the chart is drawn, as in real use)
#   BENCH_BIN=PATH                   mvl-monitor binary to time (default: $CARGO_TARGET_DIR or target, /release/mvl-monitor)
#
# The final markdown table goes to stdout and bench/results/latest.md. Logs and outputs of each
# scenario's last run are in bench/results/work/<scenario>/.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
cd "$ROOT"

VENV=$ROOT/.venv
PY=$VENV/bin/python
BIN=${BENCH_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/mvl-monitor}
RESULTS_DIR=$BENCH_DIR/results
WORK=$RESULTS_DIR/work
END=${BENCH_END:-$(date -u +%Y-%m-%dT%H:00:00Z)}

SCENARIOS=("$@")
if [ ${#SCENARIOS[@]} -eq 0 ]; then SCENARIOS=(S1 S2 S3 S4 S5); fi
for s in "${SCENARIOS[@]}"; do
  case $s in S1|S2|S3|S4|S5) ;; *) echo "unknown scenario: $s (want S1..S5)" >&2; exit 2 ;; esac
done

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }

# Keep every AWS client on the explicit, local settings: no profile, no metadata service, no proxy.
mkdir -p "$WORK"  # each scenario clears only its own $WORK/<scenario>/
: >"$WORK/empty-aws-config"
export AWS_CONFIG_FILE=$WORK/empty-aws-config
export AWS_SHARED_CREDENTIALS_FILE=$WORK/empty-aws-config
export AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_ENDPOINT_URL || true
unset HTTP_PROXY HTTPS_PROXY http_proxy https_proxy ALL_PROXY all_proxy || true
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
export PYTHONPATH=$ROOT/testbed${PYTHONPATH:+:$PYTHONPATH}

# ---------------------------------------------------------------- processes started here
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do
    if kill -0 "$p" 2>/dev/null; then kill "$p" 2>/dev/null || true; fi
  done
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- results table
ROWS=$WORK/results.rows  # a file, so scenarios can run in subshells
: >"$ROWS"
result() { # scenario metric value
  printf '| %s | %s | %s |\n' "$1" "$2" "$3" >>"$ROWS"
  log "RESULT $1 | $2 | $3"
}

# ---------------------------------------------------------------- setup
setup() {
  if [ ! -x "$PY" ]; then
    log "creating venv $VENV"
    python3 -m venv "$VENV"
  fi
  if [ "${BENCH_SKIP_INSTALL:-0}" != 1 ]; then
    local reqs=(-r "$BENCH_DIR/requirements.txt")
    if [ -f "$ROOT/testbed/requirements.txt" ]; then reqs+=(-r "$ROOT/testbed/requirements.txt"); fi
    log "pip install ${reqs[*]}"
    "$PY" -m pip install -q "${reqs[@]}"
  fi
  if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    log "cargo build --release --locked (slow on a clean tree)"
    cargo build --release --locked
  fi
  if [ ! -x "$BIN" ]; then log "WARNING: $BIN missing; mvl-monitor steps will fail"; fi
  if [ ! -x /usr/bin/time ]; then
    log "installing GNU time"
    apt-get install -y -qq time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
  fi
  if ! command -v hyperfine >/dev/null; then
    log "installing hyperfine (optional)"
    apt-get install -y -qq hyperfine >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq hyperfine >/dev/null 2>&1; } \
      || log "hyperfine not available; S5 falls back to a loop"
  fi
}

# ---------------------------------------------------------------- test bed
SERVER_PID=
ENDPOINT=
start_server() { # dir latency delay
  local dir=$1 latency=$2 delay=$3
  mkdir -p "$dir"
  rm -f "$dir/port"
  "$PY" -m mvl_testbed.server --port-file "$dir/port" --query-latency "$latency" --request-delay "$delay" \
    >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  local _
  for _ in $(seq 1 600); do
    if [ -s "$dir/port" ]; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      log "test bed server died; see $dir/server.log"; tail -20 "$dir/server.log" >&2; return 1
    fi
    sleep 0.2
  done
  [ -s "$dir/port" ] || { log "test bed server did not write its port in 120 s"; return 1; }
  sleep 0.1  # the port file may be written in two steps
  ENDPOINT="http://127.0.0.1:$(tr -d '[:space:]' <"$dir/port")"
  log "test bed up at $ENDPOINT (pid $SERVER_PID, latency $latency s, delay $delay s)"
}

stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
}

seed() { # dir accounts counties hours [extra seed args...]
  local dir=$1 accounts=$2 counties=$3 hours=$4
  shift 4
  log "seeding $accounts accounts x $counties counties x $hours h (end $END)"
  local t0; t0=$(now)
  "$PY" -m mvl_testbed.seed --endpoint "$ENDPOINT" --out-dir "$dir/seed" --accounts "$accounts" \
    --counties "$counties" --hours "$hours" --end "$END" "$@" >"$dir/seed.log" 2>&1 \
    || { log "seeding failed; see $dir/seed.log"; tail -20 "$dir/seed.log" >&2; return 1; }
  chmod 600 "$dir/seed/accounts.yaml"  # it holds keys; mvl-monitor warns about group/world-readable ones
  log "seeded in $(secs "$t0" "$(now)") s"
}

stat_count() { # key -> count of that request kind so far (e.g. logs:StartQuery); "total" sums all
  "$PY" - "$ENDPOINT" "$1" <<'EOF'
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/_testbed/stats", timeout=30) as r:
    reqs = json.load(r).get("requests", {})
print(sum(reqs.values()) if sys.argv[2] == "total" else reqs.get(sys.argv[2], 0))
EOF
}

newest_csv() { ls -t "$1"/metrics_*.csv 2>/dev/null | head -1 || true; }

check_csv() { # scenario label truth produced
  local sc=$1 label=$2 truth=$3 produced=$4 verdict
  if [ -z "$produced" ] || [ ! -f "$produced" ]; then
    verdict="FAIL (no CSV)"
  elif cmp -s "$truth" "$produced"; then
    verdict=PASS
  else
    diff "$truth" "$produced" | head -20 >"$produced.diff" || true
    if "$PY" "$BENCH_DIR/compare_csv.py" "$truth" "$produced" >"$produced.compare" 2>&1; then
      verdict="FAIL (bytes differ, same contents; see $(basename "$produced").diff)"
    else
      verdict="FAIL ($(head -1 "$produced.compare"))"
    fi
  fi
  result "$sc" "$label" "$verdict"
}

# Runs mvl-monitor collect; sets MVL_SECS, MVL_CSV, MVL_RC.
run_mvl() { # dir accounts_file range_hours [extra args...]
  local dir=$1 acc=$2 hours=$3
  shift 3
  mkdir -p "$dir/mvl"
  local t0 t1
  t0=$(now)
  MVL_RC=0
  "$BIN" collect --accounts "$acc" --endpoint-url "$ENDPOINT" --region us-east-1 --end "$END" \
    --range-hours "$hours" --out-dir "$dir/mvl" -q "$@" >"$dir/mvl.log" 2>&1 || MVL_RC=$?
  t1=$(now)
  MVL_SECS=$(secs "$t0" "$t1")
  MVL_CSV=$(newest_csv "$dir/mvl")
  if [ "$MVL_RC" != 0 ]; then log "mvl-monitor exited $MVL_RC; see $dir/mvl.log"; tail -5 "$dir/mvl.log" >&2; fi
}

# ---------------------------------------------------------------- S1 / S2: seed script vs mvl-monitor vs floor
compare_scenario() { # name accounts
  local sc=$1 n=$2 counties=20 dir=$WORK/$1
  rm -rf "$dir"; mkdir -p "$dir"
  start_server "$dir" 1 0.02
  seed "$dir" "$n" "$counties" 24
  local acc=$dir/seed/accounts.yaml truth=$dir/seed/ground_truth_60.csv
  local q0 r0 q1 r1 t0 t1

  # (a) the seed script
  log "$sc (a) seed_collect_metrics.py over $n accounts"
  q0=$(stat_count logs:StartQuery); r0=$(stat_count total)
  mkdir -p "$dir/seedscript"
  local a_rc=0
  t0=$(now)
  AWS_ENDPOINT_URL=$ENDPOINT "$PY" "$BENCH_DIR/seed_collect_metrics.py" --accounts "$acc" \
    --out-dir "$dir/seedscript" --end "$END" >"$dir/seedscript.log" 2>&1 || a_rc=$?
  t1=$(now)
  local a_secs; a_secs=$(secs "$t0" "$t1")
  q1=$(stat_count logs:StartQuery); r1=$(stat_count total)
  result "$sc" "(a) seed script wall s ($n acc x $counties counties x 24 h)" "$a_secs$([ $a_rc = 0 ] || echo " (exit $a_rc)")"
  result "$sc" "(a) seed script StartQuery / all requests" "$((q1 - q0)) / $((r1 - r0))"
  local seed_csv; seed_csv=$(newest_csv "$dir/seedscript")
  if [ -n "$seed_csv" ] && "$PY" "$BENCH_DIR/compare_csv.py" --tol 0.00005001 "$truth" "$seed_csv" >"$dir/seedscript.compare" 2>&1; then
    result "$sc" "(a) seed script CSV vs ground truth (info: contents +-0.00005; the seed also counts events at a window's end)" "match"
  else
    result "$sc" "(a) seed script CSV vs ground truth (info: contents +-0.00005; the seed also counts events at a window's end)" "$(head -1 "$dir/seedscript.compare" 2>/dev/null || echo 'no CSV')"
  fi

  # (b) mvl-monitor
  log "$sc (b) mvl-monitor collect over $n accounts"
  q0=$(stat_count logs:StartQuery); r0=$(stat_count total)
  run_mvl "$dir" "$acc" 24
  q1=$(stat_count logs:StartQuery); r1=$(stat_count total)
  local b_secs=$MVL_SECS
  result "$sc" "(b) mvl-monitor wall s" "$b_secs$([ "$MVL_RC" = 0 ] || echo " (exit $MVL_RC)")"
  result "$sc" "(b) mvl-monitor StartQuery / all requests" "$((q1 - q0)) / $((r1 - r0))"
  check_csv "$sc" "(b) mvl-monitor CSV == ground_truth_60.csv" "$truth" "$MVL_CSV"

  # (c) the floor
  log "$sc (c) floor over $n accounts"
  local c_secs c_rc=0
  c_secs=$("$PY" "$BENCH_DIR/floor.py" --accounts "$acc" --seed-json "$dir/seed/seed.json" \
    --endpoint-url "$ENDPOINT" --end "$END" --range-hours 24 2>"$dir/floor.log" | tail -1) || c_rc=$?
  result "$sc" "(c) floor s (1 binned query per account, 100 ms polls)" "$c_secs$([ $c_rc = 0 ] || echo " (exit $c_rc)")"

  # output time: mvl-monitor plot on its own CSV
  local o_secs=NA
  if [ -n "$MVL_CSV" ]; then
    t0=$(now)
    if "$BIN" plot "$MVL_CSV" -o "$dir/replot.png" >"$dir/plot.log" 2>&1; then
      o_secs=$(secs "$t0" "$(now)")
    fi
  fi
  result "$sc" "output time s (mvl-monitor plot on its CSV)" "$o_secs"

  local speedup=NA ratio=NA
  if [ "$MVL_RC" = 0 ]; then speedup=$(calc "$a_secs / $b_secs"); fi
  if [ "$MVL_RC" = 0 ] && [ "$c_rc" = 0 ] && [ "$o_secs" != NA ]; then
    ratio=$(calc "$b_secs / ($c_secs + $o_secs)")
  fi
  result "$sc" "speedup a/b" "${speedup}x"
  result "$sc" "b / (c + output time)" "$ratio"
  stop_server
}

# ---------------------------------------------------------------- S3: one account, 12 days x 60 counties
s3() {
  local sc=S3 dir=$WORK/S3
  rm -rf "$dir"; mkdir -p "$dir"
  start_server "$dir" 1 0.02
  seed "$dir" 1 60 288
  local q0 q1 r0 r1
  q0=$(stat_count logs:StartQuery); r0=$(stat_count total)
  run_mvl "$dir" "$dir/seed/accounts.yaml" 288
  q1=$(stat_count logs:StartQuery); r1=$(stat_count total)
  result "$sc" "mvl-monitor wall s (1 acc x 60 counties x 288 h)" "$MVL_SECS$([ "$MVL_RC" = 0 ] || echo " (exit $MVL_RC)")"
  result "$sc" "rows in CSV" "$([ -n "$MVL_CSV" ] && echo $(($(wc -l <"$MVL_CSV") - 1)) || echo NA) (truth $(($(wc -l <"$dir/seed/ground_truth_60.csv") - 1)))"
  result "$sc" "StartQuery calls / all requests" "$((q1 - q0)) / $((r1 - r0))"
  check_csv "$sc" "CSV == ground_truth_60.csv" "$dir/seed/ground_truth_60.csv" "$MVL_CSV"
  stop_server
}

# ---------------------------------------------------------------- S4: memory at 1M rows
s4() {
  local sc=S4 dir=$WORK/S4
  rm -rf "$dir"; mkdir -p "$dir/mvl"
  start_server "$dir" 0 0
  seed "$dir" 100 60 168 --events-per-window 1
  local extra=()
  if [ "${BENCH_S4_PLOT:-1}" = 0 ]; then extra=(--no-plot); fi
  local t0 t1 rc=0
  t0=$(now)
  /usr/bin/time -v -o "$dir/time.txt" "$BIN" collect --accounts "$dir/seed/accounts.yaml" \
    --endpoint-url "$ENDPOINT" --region us-east-1 --end "$END" --range-hours 168 --out-dir "$dir/mvl" -q \
    "${extra[@]+"${extra[@]}"}" >"$dir/mvl.log" 2>&1 || rc=$?
  t1=$(now)
  local csv; csv=$(newest_csv "$dir/mvl")
  local kb; kb=$(awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' "$dir/time.txt" 2>/dev/null || true)
  result "$sc" "mvl-monitor wall s (100 acc x 60 counties x 168 h, 1 event each$([ "${BENCH_S4_PLOT:-1}" = 0 ] && echo ', --no-plot'))" "$(secs "$t0" "$t1")$([ $rc = 0 ] || echo " (exit $rc)")"
  result "$sc" "max RSS MB" "$([ -n "$kb" ] && calc "$kb / 1024" || echo NA)"
  result "$sc" "rows in CSV" "$([ -n "$csv" ] && echo $(($(wc -l <"$csv") - 1)) || echo NA) (truth $(($(wc -l <"$dir/seed/ground_truth_60.csv") - 1)))"
  check_csv "$sc" "CSV == ground_truth_60.csv" "$dir/seed/ground_truth_60.csv" "$csv"
  stop_server
}

# ---------------------------------------------------------------- S5: chart rendering
s5() {
  local sc=S5 dir=$WORK/S5
  rm -rf "$dir"; mkdir -p "$dir"
  local spec name accounts counties
  for spec in "240:12:20" "6000:100:60"; do
    IFS=: read -r name accounts counties <<<"$spec"
    local csv=$dir/series_$name.csv png=$dir/series_$name.png best=NA
    "$PY" "$BENCH_DIR/gen_csv.py" --accounts "$accounts" --counties "$counties" --hours 24 --end "$END" -o "$csv"
    if command -v hyperfine >/dev/null; then
      if hyperfine --runs 3 --warmup 0 --style none --export-json "$dir/hf_$name.json" \
        "$BIN plot $csv -o $png" >"$dir/hf_$name.log" 2>&1; then
        best=$("$PY" -c 'import json,sys; print("%.2f" % min(json.load(open(sys.argv[1]))["results"][0]["times"]))' "$dir/hf_$name.json")
      fi
    else
      local t0 t
      for _ in 1 2 3; do
        t0=$(now)
        if "$BIN" plot "$csv" -o "$png" >"$dir/plot_$name.log" 2>&1; then
          t=$(secs "$t0" "$(now)")
          if [ "$best" = NA ] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$t; fi
        fi
      done
    fi
    result "$sc" "mvl-monitor plot s, $name series x 24 points (best of 3)" "$best"
  done
}

# ---------------------------------------------------------------- main
setup
log "range end $END; scenarios ${SCENARIOS[*]}"
for s in "${SCENARIOS[@]}"; do
  log "=== $s ==="
  # Each scenario runs in its own subshell with errexit on and its own cleanup trap, so a failing
  # step aborts that scenario only (its server is stopped) and the table still gets written.
  set +e
  (
    set -e
    PIDS=()
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    case $s in
      S1) compare_scenario S1 12 ;;
      S2) compare_scenario S2 100 ;;
      S3) s3 ;;
      S4) s4 ;;
      S5) s5 ;;
    esac
  )
  rc=$?
  set -e
  if [ "$rc" != 0 ]; then result "$s" "scenario aborted" "exit $rc (logs in bench/results/work/$s)"; fi
  if [ "$rc" = 130 ]; then break; fi
done

{
  echo "# mvl-monitor bench $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (dirty)'), $(nproc) cores, range end $END"
  echo
  echo "| scenario | metric | value |"
  echo "| --- | --- | --- |"
  cat "$ROWS"
} >"$RESULTS_DIR/latest.md"
cat "$RESULTS_DIR/latest.md"
