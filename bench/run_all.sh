#!/usr/bin/env bash
# Runs every component benchmark once, each printing its same-run baselines,
# and keeps the whole output in one log. Needs a release build
# (./build.sh build release). Usage: bench/run_all.sh [BUILD_DIR] [LOG]
# Run it on an otherwise idle machine: on 2 cores a compiler beside it
# lowers every figure several-fold.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
log=${2:-bench-$(date -u +%Y%m%d-%H%M%S).log}
b=$build/bench

{
  echo "# ringpipe benchmarks $(date -u +%FT%TZ) $(git describe --always --dirty 2>/dev/null || true)"
  echo "# $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
  run() { echo; echo "\$ $*"; "$@"; }
  run "$b/ring_bench" --producers 1 --readers 1 --batch 1 --payload 32 --samples 20000000
  run "$b/ring_bench" --producers 1 --readers 1 --batch 32 --payload 32 --samples 20000000
  run "$b/ring_bench" --producers 2 --readers 1 --batch 1 --payload 32 --samples 20000000
  run "$b/ring_bench" --producers 1 --readers 1 --batch 1 --payload 32 --samples 2000000 --mode latency
  run "$b/ring_bench" --mode attach
  run "$b/ring_bench" --mode pss
  run "$b/ingest_bench" --parse-only
  run "$b/ingest_bench" --udp-only --seconds 5 --lines 20 --rate 0
  run "$b/mqtt_bench" --messages 200000 --qos 0 --payload value
  run "$b/mqtt_bench" --messages 100000 --qos 1 --payload json
  run "$b/processors_bench" --benchmark_min_time=0.3
  run "$b/processor_rss" 1000000
  run "$b/processor_rss" 1000000 --no-state
  run "$b/exporters_bench" --series 10000,100000,1000000
} 2>&1 | tee "$log"
echo "log: $log"
