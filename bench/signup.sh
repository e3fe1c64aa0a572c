#!/usr/bin/env bash
# Sign-up throughput: starts a release build of tickermail on a fresh SQLite
# database with the per-IP limits lifted, loads POST /subscriptions with wrk
# (unique emails per request, bench/signup.lua) and prints wrk's figures.
#
#   bench/signup.sh [connections=16] [seconds=20] [runs=3]
#
# Set DATABASE_URL to bench PostgreSQL instead. Confirmation emails go over
# SMTP into postfix's smtp-sink (Debian package postfix) when it is installed,
# as in a deployment; MAIL=outbox writes them as .eml files instead.
set -euo pipefail
cd "$(dirname "$0")/.."
connections=${1:-16}
seconds=${2:-20}
runs=${3:-3}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

cargo build --release --quiet
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
export DATABASE_URL=${DATABASE_URL:-sqlite://$work/bench.db}
export MAIL_OUTBOX_DIR=$work/outbox BIND=127.0.0.1:$port SIGNUP_LIMIT_PER_HOUR=0 MAX_CONNECTIONS_PER_CLIENT=0 RUST_LOG=${RUST_LOG:-warn}
export ADMIN_TOKEN=bench-admin-token-0123456789
sink=""
if [ "${MAIL:-smtp}" = smtp ] && command -v smtp-sink >/dev/null; then
    sink_port=$((port + 1))
    smtp-sink -u nobody "127.0.0.1:$sink_port" 1000 &
    sink=$!
    export SMTP_URL="smtp://127.0.0.1:$sink_port?tls=none" SEND_CONCURRENCY=${SEND_CONCURRENCY:-8}
fi
./target/release/tickermail > "$work/server.log" 2>&1 &
server=$!
trap 'kill $server $sink 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done

echo "tickermail sign-up: $connections connections, ${seconds}s x $runs runs, database ${DATABASE_URL%%:*}, mail $([ -n "$sink" ] && echo "SMTP to smtp-sink" || echo ".eml files")"
for run in $(seq 1 "$runs"); do
    wrk -t2 -c"$connections" -d"${seconds}s" --latency -s bench/signup.lua \
        "http://127.0.0.1:$port/subscriptions" | grep '^RESULT' | sed "s/^RESULT/run $run:/"
done
stats() { curl -s -H "Authorization: Bearer $ADMIN_TOKEN" "http://127.0.0.1:$port/admin/api/stats"; }
echo "outbox when the load stopped: $(stats)"
start=$(date +%s.%N)
for _ in $(seq 1 600); do
    stats | grep -qE '"status":"(queued|sending)"' || break
    sleep 0.2
done
echo "outbox drained $(echo "$(date +%s.%N) - $start" | bc) s later: $(stats)"
