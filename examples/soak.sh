#!/usr/bin/env bash
# A soak run: `enforcer serve` with the embedded store under a steady
# EvaluateStream load for SECONDS (default 300) at RATE events/s (default
# 2,000), while a new build of a rule is activated through the control
# plane every 5 s and the hostile corpus is sent every 2 s; the server's
# resident memory is sampled every 15 s and its metrics scraped at the end.
# The decision log keeps 50,000 decisions in memory (instead of 500,000)
# so that it fills within the first minute: memory is then flat only if
# nothing else grows.
# Build first: cargo build --release -p enforcer --bin enforcer
#              cargo build --release -p enforcer-examples --example loadgen
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${SECONDS_TO_RUN:-300}
rate=${RATE:-2000}
# STORAGE=memory keeps decisions in memory only (--in-memory).
case ${STORAGE:-embedded} in
  memory) storage="--in-memory" ;;
  *) storage="--data-dir $(mktemp -d)/data" ;;
esac
out="${TMPDIR:-/tmp}/enforcer-soak"
rm -rf "$out"
mkdir -p "$out"
token=soak-admin-token-0123456789
bin=target/release/enforcer
load=target/release/examples/loadgen
$bin serve --listen 127.0.0.1:50081 --admin-listen 127.0.0.1:50082 \
  --metrics-listen 127.0.0.1:50083 --admin-token $token --allow-unsigned-rules \
  $storage --decision-log-capacity 50000 > "$out/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
until grep -q "listening" "$out/serve.log"; do sleep 0.2; done
ENFORCER_ADMIN_TOKEN=$token $load --addr http://127.0.0.1:50081 \
  --admin-addr http://127.0.0.1:50082 --mode stream --connections 2 \
  --rate "$rate" --seconds "$seconds" --accounts 10000 --minutes 10 \
  --swap-every 5 --hostile-every 2 --watch-pid $pid --sample-every 15 --quiet
curl -s http://127.0.0.1:50083/metrics > "$out/metrics.txt" || true
grep -E '^enforcer_(decisions_total|events_refused_total|grpc_requests_total)' \
  "$out/metrics.txt" | head -40 || true
kill -TERM $pid
wait $pid || true
echo "panics in the server log: $(grep -ciE panic "$out/serve.log" || true)"
