#!/usr/bin/env bash
# Throughput and latency of `enforcer serve` in memory, with the embedded
# store, and with its counters and labels in Redis (decisions in memory),
# alternated in one run: EvaluateStream on 2 connections for 15 s, then
# unary Evaluate at 2,000 calls/s for 10 s, each mode twice. Needs
# redis-server (apt-get install redis-server).
# Build first: cargo build --release -p enforcer --bin enforcer
#              cargo build --release -p enforcer-examples --example loadgen
set -euo pipefail
cd "$(dirname "$0")/.."
out="${TMPDIR:-/tmp}/enforcer-bench-storage"
mkdir -p "$out"
bin=target/release/enforcer
load=target/release/examples/loadgen
redis_port=56379
redis-server --port $redis_port --bind 127.0.0.1 --save "" --appendonly no > $out/redis.log 2>&1 &
redis_pid=$!
trap 'kill $redis_pid 2>/dev/null || true' EXIT
until redis-cli -p $redis_port ping >/dev/null 2>&1; do sleep 0.1; done
run() { # mode port
  local mode=$1 port=$2 args
  case $mode in
    memory) args="--in-memory" ;;
    embedded) rm -rf $out/data; args="--data-dir $out/data" ;;
    redis) redis-cli -p $redis_port flushall >/dev/null; args="--in-memory --redis-url redis://127.0.0.1:$redis_port" ;;
  esac
  $bin serve --listen 127.0.0.1:$port $args > $out/serve-$mode.log 2>&1 &
  local pid=$!
  until grep -q "listening" $out/serve-$mode.log; do sleep 0.2; done
  $load --addr http://127.0.0.1:$port --mode stream --connections 2 --seconds 15 2>&1 | grep -E "^throughput|^sent" | tr '\n' ' '
  echo " [$mode]"
  $load --addr http://127.0.0.1:$port --mode unary --rate 2000 --seconds 10 2>&1 | grep -iE "p50|p99|latency" | head -3 | tr '\n' ' '
  echo " [$mode unary 2000/s]"
  kill -TERM $pid; wait $pid || true
}
for round in 1 2; do
  run memory 50091
  run embedded 50092
  run redis 50093
  echo "redis: $(redis-cli -p $redis_port info memory | grep used_memory_human), $(redis-cli -p $redis_port dbsize) keys"
done
du -sh $out/data
