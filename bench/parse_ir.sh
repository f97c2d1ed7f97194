#!/bin/bash
# Instructions per parsed line of each parser, counted by callgrind (so load
# on the machine does not matter): ingest_bench --parse-only runs each
# baseline and the parser exactly RINGPIPE_BENCH_REPS times; a run of 3
# passes less a run of 1 leaves two passes over the 8 MiB buffer (parser plus
# its memchr and memcpy baselines, the same code in every build), with the
# start-up and traffic generation cancelled. Two builds compare like with like.
#
#   bench/parse_ir.sh BUILD_DIR [PROTOCOL...]   (default: all five)
#   e.g. bench/parse_ir.sh build/release statsd prom_text
set -euo pipefail
[ $# -ge 1 ] || { sed -n 2,9p "$0"; exit 2; }
b=$1; shift
protos=("$@"); [ ${#protos[@]} -gt 0 ] || protos=(statsd influx graphite json prom_text)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
count() {  # PROTOCOL REPS -> total instructions of the run
  RINGPIPE_BENCH_REPS=$2 valgrind --tool=callgrind --callgrind-out-file="$tmp/cg" \
    "$b/bench/ingest_bench" --parse-only --protocol "$1" > "$tmp/log" 2>&1
  grep '^summary' "$tmp/cg" | awk '{print $2}'
}
for p in "${protos[@]}"; do
  one=$(count "$p" 1); three=$(count "$p" 3)
  echo "$p $(( (three - one) / 2 )) instructions per pass over the buffer"
done
