#!/bin/bash
# Instructions per iteration of processors_bench cases, counted by callgrind
# (so load on the machine does not matter): each case runs exactly N1 and
# then N2 iterations (RINGPIPE_BENCH_ITERS); the difference over N2 - N1 is
# one iteration's cost with the case's set-up cancelled. Two builds' figures
# compare like with like (the same case does the same work in each).
#
#   bench/processors_ir.sh BUILD_DIR [CASE...]   (a case: a benchmark name as processors_bench prints it)
#   e.g. bench/processors_ir.sh build/release BM_ShardApply/1000 BM_ShardApplyBatchState/100000
set -euo pipefail
[ $# -ge 1 ] || { sed -n 2,9p "$0"; exit 2; }
b=$1; shift
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(BM_ShardApply/1000 BM_ShardApply/100000 BM_ShardApplyBatch/1000
                                 BM_ShardApplyBatch/100000 BM_ShardApplyBatchState/1000
                                 BM_ShardApplyBatchState/100000 BM_EngineAdd/1000 BM_EngineAdd/100000
                                 BM_Match/0 BM_Match/1000 BM_Match/8192)
N1=${N1:-2000}; N2=${N2:-6000}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
count() {  # CASE ITERATIONS -> total instructions
  RINGPIPE_BENCH_ITERS=$2 valgrind --tool=callgrind --callgrind-out-file="$tmp/cg" \
    "$b/bench/processors_bench" "--benchmark_filter=^$1(/iterations:[0-9]+)?\$" > "$tmp/log" 2>&1
  grep -q "$1" "$tmp/log" || { echo "no case $1 in $b" >&2; exit 1; }
  grep '^summary' "$tmp/cg" | awk '{print $2}'
}
for c in "${cases[@]}"; do
  one=$(count "$c" "$N1"); two=$(count "$c" "$N2")
  echo "$c $(( (two - one) / (N2 - N1) )) instructions per iteration"
done
