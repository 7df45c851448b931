#!/usr/bin/env bash
# End-to-end benchmarks of BENCHMARKS.md ("End to end (examples)"), in one run on one machine:
# the reference server (release build, SQLite, durable default), the same webhook route over a
# store that keeps nothing (the ceiling), and the Python baseline under bench/baseline/, all
# driven by the same load generator. Prints a summary with the ratios; every report is also
# appended as one JSON line to target/bench/results.jsonl.
#
#   examples/bench/run.sh                         # every scenario
#   BENCH_SCENARIOS="ceiling sqlite baseline" examples/bench/run.sh
#   BENCH_DURATION=20 examples/bench/run.sh       # seconds per ingest run (at most 30)
#
# It builds first, then holds /tmp/bench.lock (BENCH_LOCK) while measuring.
#
# Scenarios: ceiling sqlite sqlite-full baseline latency baseline-latency fanout large
# postgres redis. PostgreSQL runs use a database of their own (compliance_e2e_bench) on
# BENCH_POSTGRES_ADMIN_URL; Redis runs use keys under e2ebench: on BENCH_REDIS_URL (removed afterwards).
# Everything listens on loopback; every process started here is stopped by its pid.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

SCENARIOS=${BENCH_SCENARIOS:-"ceiling sqlite sqlite-full baseline latency baseline-latency fanout large postgres redis"}
DURATION=${BENCH_DURATION:-10}
CONCURRENCY=${BENCH_CONCURRENCY:-32}
REPOS=${BENCH_REPOS:-200}
BAD=${BENCH_BAD_SIGNATURES:-0.05}
POSTGRES_ADMIN_URL=${BENCH_POSTGRES_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/test}
POSTGRES_URL=${POSTGRES_ADMIN_URL%/*}/compliance_e2e_bench
REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379}
OUT=${BENCH_OUT:-$ROOT/target/bench}
VENV=${BENCH_VENV:-$ROOT/target/bench-venv}

SECRET=bench-webhook-secret
TOKEN=bench-admin-token
SIM=127.0.0.1:4600
SIM_TOKEN=loadgen-sim-token
SERVER=127.0.0.1:3300
CEILING=127.0.0.1:3100
BASELINE=127.0.0.1:3200

if (( DURATION > 30 )); then
    echo "BENCH_DURATION is at most 30 seconds" >&2
    exit 2
fi
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: > "$RESULTS"

wants() { [[ " $SCENARIOS " == *" $1 "* ]]; }

# One binary for every scenario (built with the PostgreSQL and Redis adapters), so that
# switching scenarios never rebuilds it.
echo "building (release)…"
cargo build --release -q -p compliance-examples --bins --features postgres,redis
BIN=$ROOT/target/release

# Only one benchmark at a time on a shared machine: hold the lock while measuring (not while
# building). BENCH_LOCK= (empty) skips it.
LOCK=${BENCH_LOCK-/tmp/bench.lock}
if [[ -n $LOCK ]]; then
    exec 9> "$LOCK"
    echo "waiting for $LOCK…"
    flock 9
fi

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}
trap cleanup EXIT

wait_for() { # url
    for _ in $(seq 1 300); do
        if curl -fs -o /dev/null "$1"; then
            return 0
        fi
        sleep 0.1
    done
    echo "nothing answers at $1" >&2
    return 1
}

started() { # pid of the last background process
    PIDS+=("$1")
    LAST_PID=$1
}

stop_all() { cleanup; }

server() { # label, database URL (empty: a fresh SQLite file), extra server flags…
    local label=$1 database=$2
    shift 2
    local dir=$OUT/$label
    rm -rf "$dir"
    mkdir -p "$dir"
    "$BIN/compliance-server" --listen "$SERVER" \
        --database-url "${database:-sqlite://$dir/compliance.db}" \
        --webhook-secrets "$SECRET" --admin-tokens "$TOKEN" \
        --fossa-base-url "http://$SIM" --fossa-api-key "$SIM_TOKEN" \
        --rate-per-ip 0 --rate-per-repo 0 --resync-after-secs 0 \
        "$@" > "$dir/server.log" 2>&1 &
    started $!
    wait_for "http://$SERVER/healthz"
    sleep 1
}

ceiling() {
    "$BIN/null-ingest" --listen "$CEILING" --webhook-secrets "$SECRET" \
        --admin-tokens "$TOKEN" > "$OUT/ceiling.log" 2>&1 &
    started $!
    wait_for "http://$CEILING/healthz"
}

baseline() {
    local dir=$OUT/baseline
    rm -rf "$dir"
    mkdir -p "$dir"
    if [[ ! -x $VENV/bin/uvicorn ]]; then
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q -r examples/bench/baseline/requirements.txt
    fi
    redis-cli -u "$REDIS_URL" del e2ebench:baseline:queue > /dev/null
    # REDIS_URL itself stays as given: the scenarios after this one use it too.
    export WEBHOOK_SECRET=$SECRET ADMIN_TOKEN=$TOKEN DATABASE_PATH=$dir/baseline.db \
        BASELINE_REDIS_URL=$REDIS_URL/0 QUEUE_KEY=e2ebench:baseline:queue EVENTS_CHANNEL=e2ebench:baseline:events \
        FOSSA_BASE_URL=http://$SIM FOSSA_API_KEY=$SIM_TOKEN
    (cd examples/bench/baseline && REDIS_URL=$BASELINE_REDIS_URL exec "$VENV/bin/uvicorn" app:app --host "${BASELINE%:*}" \
        --port "${BASELINE#*:}" --log-level warning) > "$dir/app.log" 2>&1 &
    started $!
    BASELINE_PID=$LAST_PID
    (cd examples/bench/baseline && REDIS_URL=$BASELINE_REDIS_URL exec "$VENV/bin/python" worker.py) > "$dir/worker.log" 2>&1 &
    started $!
    wait_for "http://$BASELINE/docs"
}

loadgen() { # scenario, target, loadgen arguments…
    local label=$1 target=$2
    shift 2
    echo "-- $label" >&2
    "$BIN/loadgen" --json "$@" --target "$target" --secret "$SECRET" --token "$TOKEN" \
        --sim-addr "$SIM" --sim-token "$SIM_TOKEN" --label "$label" | tee -a "$RESULTS" > /dev/null
}

ingest_args=(ingest --repos "$REPOS" --concurrency "$CONCURRENCY" --duration "$DURATION"
    --bad-signatures "$BAD" --drain 0)

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

if wants ceiling; then
    ceiling
    loadgen ceiling "$CEILING" "${ingest_args[@]}"
    stop_all
fi

if wants sqlite; then
    server sqlite ""
    loadgen sqlite "$SERVER" "${ingest_args[@]}" --server-pid "$LAST_PID"
    stop_all
fi

if wants sqlite-full; then
    server sqlite-full "" --sqlite-synchronous full
    loadgen sqlite-full "$SERVER" "${ingest_args[@]}" --server-pid "$LAST_PID"
    stop_all
fi

if wants baseline; then
    baseline
    loadgen baseline "$BASELINE" "${ingest_args[@]}" --server-pid "$BASELINE_PID"
    stop_all
fi

if wants latency; then
    for rate in 100 1000; do
        server "latency-$rate" ""
        loadgen "latency-$rate" "$SERVER" ingest --repos "$REPOS" --concurrency 64 \
            --rate "$rate" --duration "$DURATION" --bad-signatures 0 --subscribers 1 \
            --drain 10 --server-pid "$LAST_PID"
        stop_all
    done
fi

if wants baseline-latency; then
    baseline
    loadgen baseline-latency-100 "$BASELINE" ingest --repos "$REPOS" --concurrency 64 \
        --rate 100 --duration "$DURATION" --bad-signatures 0 --subscribers 1 --drain 10 \
        --server-pid "$BASELINE_PID"
    stop_all
fi

if wants fanout; then
    ulimit -n 30000 2> /dev/null || ulimit -n "$(ulimit -Hn)"
    server fanout ""
    loadgen fanout "$SERVER" fanout --subscribers "${BENCH_SUBSCRIBERS:-10000}" --rounds 3 \
        --server-pid "$LAST_PID"
    stop_all
fi

if wants large; then
    server large ""
    loadgen large "$SERVER" large --deps 20000 --issues 5000 --rounds 3 --server-pid "$LAST_PID"
    stop_all
fi

if wants postgres; then
    psql -q "$POSTGRES_ADMIN_URL" -c "DROP DATABASE IF EXISTS compliance_e2e_bench" \
        -c "CREATE DATABASE compliance_e2e_bench" > /dev/null
    server postgres "$POSTGRES_URL"
    loadgen postgres "$SERVER" "${ingest_args[@]}" --server-pid "$LAST_PID"
    stop_all
fi

if wants redis; then
    server redis "" --queue "$REDIS_URL" --redis-key-prefix "e2ebench:$$:"
    loadgen redis "$SERVER" "${ingest_args[@]}" --server-pid "$LAST_PID"
    stop_all
    redis-cli -u "$REDIS_URL" --scan --pattern "e2ebench:$$:*" |
        xargs -r -n 500 redis-cli -u "$REDIS_URL" del > /dev/null
fi

echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$ROOT/examples/bench/summary.py" "$RESULTS"
