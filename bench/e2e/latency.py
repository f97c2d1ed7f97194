#!/usr/bin/env python3
"""Arrival-to-/metrics latency at a low rate: ringpipe next to collectd, same run.

Each system is started fresh on loopback (as run.py starts it). Then, every
--interval seconds, one StatsD line `e2e.latency:<n>|g` goes out over UDP and
/metrics is scraped in a tight loop meanwhile; a line's latency is the time
from its send to the first scrape whose gauge reads n or more (loopback keeps
datagrams in order, and a gauge keeps the last value, so that page has seen
line n). A gauge, not a counter: the value names the line. Lines not seen
--give-up seconds after the last send are counted lost.

A system that publishes every F seconds (ringpipe's processor flush_interval,
1 s by default; collectd's Interval, 1 s here) shows latencies spread over
[0, F] plus its own delay, so the figure to compare is the maximum against
F: the goal is max <= F + 10 ms. Also printed: the median, p99, and the
scrape time (the loop's resolution).

  bench/e2e/latency.py [--lines 300] [--interval 0.01] [--systems ringpipe,collectd]
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as e2e  # noqa: E402  (the same starters, ports and stop as the throughput bench)


def gauge_value(system, text):
    """The e2e.latency gauge's value in a page, or None (collectd adds a timestamp after it)."""
    for line in text.splitlines():
        m = e2e.SAMPLE.match(line)
        if not m:
            continue
        if system == "ringpipe" and m.group(1) == "e2e_latency":
            return float(m.group(3))
        if system != "ringpipe" and m.group(1) == "collectd_statsd_gauge" and 'statsd="e2e.latency"' in (m.group(2) or ""):
            return float(m.group(3))
    return None


def fetch(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode("utf-8", "replace")


def measure(args, system):
    tmp = tempfile.mkdtemp(prefix=f"e2e-latency-{system}-")
    statsd_port, web_port = e2e.free_port(), e2e.free_port()
    while web_port == statsd_port:
        web_port = e2e.free_port()
    starter = e2e.start_ringpipe if system == "ringpipe" else e2e.start_collectd
    cmd, _extra = starter(args, tmp, statsd_port, web_port)
    url = f"http://127.0.0.1:{web_port}/metrics"
    logf = open(os.path.join(tmp, f"{system}.log"), "w")
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    addr = ("127.0.0.1", statsd_port)
    try:
        # Ready: a first value travels the whole path.
        deadline = time.monotonic() + args.start_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{system} exited with {proc.returncode} during start (log: {logf.name})")
            sock.sendto(b"e2e.latency:0|g\n", addr)
            try:
                if gauge_value(system, fetch(url)) == 0.0:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{system} not ready after {args.start_timeout}s (log: {logf.name})")
            time.sleep(0.1)
        # A sender thread sends line n at its own pace, whatever the scrapes
        # see; the scrape loop notes when each value first shows. Loopback
        # keeps the datagrams in order and a gauge keeps the last, so a page
        # reading v has seen every line up to v.
        sent = [0.0] * (args.lines + 1)

        def sender():
            nxt = time.monotonic()
            for n in range(1, args.lines + 1):
                nxt += args.interval
                time.sleep(max(0.0, nxt - time.monotonic()))
                sent[n] = time.monotonic()
                sock.sendto(f"e2e.latency:{n}|g\n".encode(), addr)

        th = threading.Thread(target=sender)
        th.start()
        latencies, scrapes = [], []
        seen = 0
        stop_at = time.monotonic() + args.lines * args.interval + args.give_up
        while seen < args.lines and time.monotonic() < stop_at:
            t0 = time.monotonic()
            text = fetch(url)
            now = time.monotonic()
            scrapes.append(now - t0)
            v = gauge_value(system, text)
            if v is not None and v > seen:
                latencies.extend(now - sent[k] for k in range(seen + 1, int(v) + 1))
                seen = int(v)
        th.join()
        lost = args.lines - seen
        return latencies, scrapes, lost
    finally:
        sock.close()
        e2e.stop(proc)
        logf.close()


def ms(x):
    return f"{x * 1000:8.1f} ms"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lines", type=int, default=300, help="lines per system (default 300)")
    p.add_argument("--interval", type=float, default=0.01, help="pause before each line (default 0.01 s)")
    p.add_argument("--give-up", type=float, default=5.0, help="a line not seen after this is counted lost")
    p.add_argument("--flush", type=float, default=1.0, help="the systems' publish interval F (default 1 s)")
    p.add_argument("--systems", default="ringpipe,collectd")
    p.add_argument("--start-timeout", type=float, default=30)
    p.add_argument("--build-dir", default=os.path.join(e2e.ROOT, "build", "release"))
    p.add_argument("--ringpipe", help="default: <build-dir>/apps/ringpipe")
    p.add_argument("--collectd", default="/usr/sbin/collectd")
    p.add_argument("--collectd-types-db", default="/usr/share/collectd/types.db")
    args = p.parse_args()
    args.ringpipe = args.ringpipe or os.path.join(args.build_dir, "apps", "ringpipe")
    print(f"{'system':10} {'lines':>6} {'lost':>5} {'median':>11} {'p99':>11} {'max':>11} {'max - F':>11} "
          f"{'scrape':>11}")
    worst = {}
    for system in args.systems.split(","):
        if system == "collectd" and not os.path.exists(args.collectd):
            print(f"{system:10} skipped: {args.collectd} not installed")
            continue
        lat, scr, lost = measure(args, system)
        lat.sort()
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")
        mx = lat[-1] if lat else float("nan")
        worst[system] = mx
        print(f"{system:10} {len(lat):6d} {lost:5d} {ms(statistics.median(lat)) if lat else 'n/a':>11} "
              f"{ms(p99):>11} {ms(mx):>11} {ms(mx - args.flush):>11} {ms(statistics.median(scr)):>11}")
    if "ringpipe" in worst:
        ok = worst["ringpipe"] <= args.flush + 0.010
        print(f"ringpipe max latency {'<=' if ok else '>'} F + 10 ms (F = {args.flush:g} s)")


if __name__ == "__main__":
    main()
