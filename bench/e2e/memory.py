#!/usr/bin/env python3
"""ringpipe's memory at exactly N series, whatever the machine's load.

usage: bench/e2e/memory.py RINGPIPE [N=1000000] [REPS=2]

Starts `ringpipe run` (the default pipeline, as run.py does), sends every series
bench.metric.<id>:1|c (0 <= id < N) REPS times over StatsD TCP (no kernel UDP
drops: every series arrives however busy the machine is), scrapes /metrics until
every line is counted, and prints the tree's peak RSS and PSS and each process's
PSS split (smaps_rollup: anon, shmem). run.py's 1M-series scenario measures
memory after whatever the UDP load delivered; this one compares builds at the
same series count (run it for each build in turn, alternating).
"""
import os, sys, subprocess, socket, tempfile, time, shutil
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R
if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
    print(__doc__)
    sys.exit(0 if len(sys.argv) >= 2 else 2)
exe = sys.argv[1]; n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000000; reps = int(sys.argv[3]) if len(sys.argv) > 3 else 2
sp, wp = R.free_port(), R.free_port()
rd = tempfile.mkdtemp(prefix="ringpipe-mem-", dir="/dev/shm")
logdir = tempfile.mkdtemp(prefix="ringpipe-mem-log-")
log = open(os.path.join(logdir, "ringpipe.log"), "w")
p = subprocess.Popen([exe, "run", f"--statsd.listen-udp=127.0.0.1:{sp}", f"--statsd.listen-tcp=127.0.0.1:{sp}",
                      f"--web.listen-address=127.0.0.1:{wp}", "--run-dir", rd], stdout=log, stderr=subprocess.STDOUT,
                     start_new_session=True)
url = f"http://127.0.0.1:{wp}/metrics"
try:
    for _ in range(200):  # bounded: 50 s at most
        try:
            t, _, _ = R.scrape(url, timeout=5)
            break
        except OSError: time.sleep(0.25)
    payload = "".join(f"bench.metric.{i}:1|c\n" for i in range(n)).encode()
    c0 = R.tree_cpu_s(p.pid); t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", sp)) as s:
        for _ in range(reps): s.sendall(payload)
    last = None
    for _ in range(120):  # bounded: about 2 minutes
        time.sleep(1.0)
        t, sc, sz = R.scrape(url)
        tot, ns = R.counted_ringpipe(t)
        if tot == last and tot >= n * reps: break
        last = tot
    c1 = R.tree_cpu_s(p.pid)
    # Each process's CPU seconds since start (utime + stime); the exporter's
    # includes its page renders, whose total its scrape histogram's _sum gives.
    cpu = {}
    for q in R.process_tree(p.pid):
        st = R.proc_stat(q)
        if st:
            cpu[R.process_label(q).split()[0]] = st[1] / R.clk_tck()
    render_s = sum(float(l.split()[-1]) for l in t.splitlines()
                   if l.startswith("ringpipe_exporter_scrape_duration_seconds_sum"))
    hwm, pss, k, per = R.tree_memory_mb(p.pid)
    print(f"{os.path.basename(exe)}: series {ns} counted {int(tot)} of {n*reps} cpu {c1-c0:.1f} s (incl. scrapes) "
          f"last scrape {sc:.2f} s {sz} B; peak rss {hwm:.0f} MB; pss {pss:.0f} MB: " +
          "; ".join(f"{x['process'].split()[0]} {x['pss']:.0f} (anon {x['anon']:.0f} shmem {x['shmem']:.0f})" for x in per), flush=True)
    print("    cpu s since start: " + "; ".join(f"{k} {v:.2f}" for k, v in cpu.items()) +
          f"; exporter page renders {render_s:.2f}", flush=True)
    for line in t.splitlines():
        if line.startswith("ringpipe_processor_state_bytes") or line.startswith("ringpipe_processor_memory"):
            print("   ", line)
finally:
    R.stop(p); shutil.rmtree(rd, ignore_errors=True)
    log.close(); shutil.rmtree(logdir, ignore_errors=True)
