#!/bin/bash
# Same-run comparison of two (or more) ring_bench builds: runs them in
# turn, round after round (so drift on a shared machine hits all alike),
# and prints each one's median samples/s and the median of its per-round
# ratio to the first.
#
#   bench/ring_ab.sh P B N ROUNDS BASE_RING_BENCH HEAD_RING_BENCH...
#   e.g. bench/ring_ab.sh 1 32 3000000 13 ../base/build/release/bench/ring_bench build/release/bench/ring_bench
set -euo pipefail
[ $# -ge 5 ] || { sed -n 2,9p "$0"; exit 2; }
P=$1; B=$2; N=$3; R=$4; shift 4
for i in $(seq "$R"); do
  for bin in "$@"; do
    v=$(timeout 120 "$bin" --mode ring --producers "$P" --batch "$B" --samples "$N" 2>&1 |
        grep -o "samples_per_s=[0-9]*" | cut -d= -f2 || true)
    echo "$bin ${v:-0}"
  done
done | python3 -c "
import sys, statistics as st
d = {}
for line in sys.stdin:
    w, v = line.split()
    d.setdefault(w, []).append(float(v) / 1e6)
base = next(iter(d.values()))
for w, xs in d.items():
    ratios = [x / y for x, y in zip(xs, base) if y > 0]
    print(f'{w} P=$P B=$B median={st.median(xs):.1f}M ratio_to_first={st.median(ratios):.3f}', [round(x) for x in xs])
"
