#!/usr/bin/env python3
"""Same-run comparison of the component benchmarks of two (or more) builds.

Runs each build's ingest_bench --parse-only, processors_bench and
exporters_bench in turn, round after round (so drift on a shared machine hits
every build alike), and prints per figure each build's median and the median
of its per-round ratio to the first build (> 1: faster than the first).

  bench/component_ab.py ROUNDS BASE_BUILD_DIR HEAD_BUILD_DIR...
  e.g. bench/component_ab.py 5 ../base/build/release build/release

Figures: parser lines per CPU-second for each protocol (ingest_bench), items
per second of each processors_bench case (BM_ShardApply*, BM_EngineAdd,
BM_Match), and the median scrape time of exporters_bench at 10k and 100k
series (as a rate, 1/time, so that > 1 is faster there too).
"""

import json
import os
import re
import statistics as st
import subprocess
import sys

PROCESSORS_FILTER = "BM_(ShardApply|ShardApplyBatch|ShardApplyBatchState|EngineAdd)/(1000|100000)$|BM_Match/.*"


def run(cmd, timeout=600):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False).stdout


def ingest(build):
    out = run([os.path.join(build, "bench", "ingest_bench"), "--parse-only"])
    figs = {}
    for m in re.finditer(r"^\s+(\w+) parser -> BatchWriter\s+([\d.]+) M/s", out, re.M):
        figs[f"ingest {m.group(1)} parser lines/s"] = float(m.group(2)) * 1e6
    return figs


def processors(build):
    out = run([os.path.join(build, "bench", "processors_bench"), "--benchmark_min_time=0.3",
               f"--benchmark_filter={PROCESSORS_FILTER}", "--benchmark_format=json"])
    figs = {}
    try:
        data = json.loads(out)
    except json.JSONDecodeError:
        return figs
    for b in data.get("benchmarks", []):
        if "items_per_second" in b:
            figs[f"processors {b['name']} items/s"] = b["items_per_second"]
    return figs


def exporters(build):
    out = run([os.path.join(build, "bench", "exporters_bench"), "--series", "10000,100000"])
    figs = {}
    for m in re.finditer(r"^\s+(\d+) series .*?scrape best\s+[\d.]+ ms median\s+([\d.]+) ms", out, re.M):
        figs[f"exporters scrape {m.group(1)} series 1/median"] = 1000.0 / float(m.group(2))
    return figs


def main():
    if len(sys.argv) < 4:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    rounds = int(sys.argv[1])
    builds = sys.argv[2:]
    seen = {}  # figure -> build -> [values]
    for r in range(rounds):
        for b in builds:
            for f in (ingest, processors, exporters):
                for k, v in f(b).items():
                    seen.setdefault(k, {}).setdefault(b, []).append(v)
        print(f"round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    base = builds[0]
    width = max(len(k) for k in seen) if seen else 10
    print(f"{'figure':<{width}}  " + "  ".join(f"{os.path.basename(os.path.dirname(os.path.dirname(b.rstrip('/')))) or b:>22}" for b in builds))
    worst = {}
    for k, per in seen.items():
        cells = []
        for b in builds:
            xs = per.get(b, [])
            if not xs:
                cells.append(f"{'-':>22}")
                continue
            if b == base:
                cells.append(f"{st.median(xs):>22.4g}")
                continue
            ratios = [x / y for x, y in zip(xs, per.get(base, [])) if y > 0]
            ratio = st.median(ratios) if ratios else float("nan")
            worst[b] = min(worst.get(b, ratio), ratio)
            cells.append(f"{st.median(xs):>12.4g} x{ratio:>7.3f}  ")
        print(f"{k:<{width}}  " + "  ".join(cells))
    for b, w in worst.items():
        print(f"worst median ratio of {b} to {base}: {w:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
