#!/usr/bin/env python3
"""ringpipe next to collectd: the same StatsD load, the same machine, the same run.

For each scenario, each system is started fresh on loopback ports (ringpipe's
default pipeline with a temporary run dir; collectd 5.12 with only its statsd
and write_prometheus plugins), driven by `ingest_bench --send-only` for a
bounded time, and then scraped until its counters stop moving. Reported per
system: lines sent, lines counted in /metrics, % delivered, CPU seconds per
million lines sent (whole process tree), peak RSS, PSS, kernel UDP drops and
the time of one /metrics scrape.

Writes results.md, results.csv, results.json and delivered.png (gnuplot) into
--out. See bench/e2e/README.md.
"""

import argparse
import csv
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))

# name, series, lines per packet, target lines/s (0: as fast as the generator goes), family[, how
# series differ: "names" (bench.metric.<id>, the default) or "tags" (one name, bench.metric, with a
# DogStatsD tag id:<id>; collectd's statsd plugin takes no tags, so only ringpipe runs these)]
SCENARIOS = [
    ("1k-series-20lpp-1M", 1000, 20, 1_000_000, "1k series, 20 lines/packet"),
    ("1k-series-20lpp-2M", 1000, 20, 2_000_000, "1k series, 20 lines/packet"),
    ("1k-series-20lpp-4M", 1000, 20, 4_000_000, "1k series, 20 lines/packet"),
    ("1k-series-20lpp-max", 1000, 20, 0, "1k series, 20 lines/packet"),
    ("1k-series-1lpp-100k", 1000, 1, 100_000, "1k series, 1 line/packet"),
    ("1k-series-1lpp-200k", 1000, 1, 200_000, "1k series, 1 line/packet"),
    ("1k-series-1lpp-max", 1000, 1, 0, "1k series, 1 line/packet"),
    ("100k-series-20lpp-1M", 100_000, 20, 1_000_000, "100k/1M series, 20 lines/packet"),
    ("1M-series-20lpp-1M", 1_000_000, 20, 1_000_000, "100k/1M series, 20 lines/packet"),
    ("100k-names-20lpp-1M", 100_000, 20, 1_000_000, "100k/1M series, 20 lines/packet"),
    ("100k-names-20lpp-max", 100_000, 20, 0, "100k/1M series, 20 lines/packet"),
    ("100k-tags-20lpp-1M", 100_000, 20, 1_000_000, "100k series of one name, 20 lines/packet", "tags"),
    ("100k-tags-20lpp-max", 100_000, 20, 0, "100k series of one name, 20 lines/packet", "tags"),
    ("1M-series-20lpp-1M-scraped", 1_000_000, 20, 1_000_000, "1M series, scraped every second", "scraped"),
]
QUICK = ["1k-series-20lpp-1M", "1k-series-20lpp-max", "1k-series-1lpp-100k", "100k-series-20lpp-1M"]
SYSTEMS = ["ringpipe", "collectd"]
PREFIX = "bench.metric"  # the generator's counters are bench.metric.<id>:1|c


def log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------- processes


def clk_tck():
    return os.sysconf("SC_CLK_TCK")


def proc_stat(pid):
    """(ppid, utime+stime, cutime+cstime) in ticks, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()  # fields from 3 (state) on
    ppid = int(rest[1])
    utime, stime, cutime, cstime = (int(x) for x in rest[11:15])
    return ppid, utime + stime, cutime + cstime


def process_tree(root):
    """root and every live descendant."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st:
                children.setdefault(st[0], []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_cpu_s(root):
    """CPU seconds of the live tree plus the children it has reaped."""
    ticks = 0
    for i, p in enumerate(process_tree(root)):
        st = proc_stat(p)
        if st:
            ticks += st[1] + (st[2] if i == 0 else 0)
    return ticks / clk_tck()


def status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rollup_kb(pid):
    """Pss, Pss_Anon, Pss_Shmem, Pss_File of smaps_rollup in kB ({} if gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                k, _, rest = line.partition(":")
                if k in ("Pss", "Pss_Anon", "Pss_Shmem", "Pss_File"):
                    out[k] = int(rest.split()[0])
    except OSError:
        pass
    return out


def process_label(pid):
    """The process's command line, its executable's directory left out."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return str(pid)
    if not argv:
        return str(pid)
    argv[0] = os.path.basename(argv[0])
    return " ".join(a for a in argv if not a.startswith("--")) or argv[0]


def tree_memory_mb(root):
    """Peak RSS and PSS of the tree (MB), its process count, and each process's
    PSS split (MB): [{process, pss, anon, shmem, file}]."""
    procs = process_tree(root)
    hwm = sum(status_kb(p, "VmHWM") for p in procs) / 1024
    per = []
    for p in procs:
        r = rollup_kb(p)
        if r:
            per.append({"process": process_label(p), "pss": r.get("Pss", 0) / 1024,
                        "anon": r.get("Pss_Anon", 0) / 1024, "shmem": r.get("Pss_Shmem", 0) / 1024,
                        "file": r.get("Pss_File", 0) / 1024})
    pss = sum(x["pss"] for x in per)
    return hwm, pss, len(procs), per


def udp_drops(port):
    """Kernel drop counter summed over the UDP sockets bound to port."""
    total = 0
    for path in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if int(fields[1].split(":")[1], 16) == port:
                        total += int(fields[-1])
        except (OSError, StopIteration):
            pass
    return total


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1 (StatsD listens on both)."""
    for _ in range(100):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()
    raise RuntimeError("no free port")


def stop(proc, timeout=15):
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


# ---------------------------------------------------------------- /metrics

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def scrape(url, timeout=120):
    t0 = time.monotonic()
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body = r.read()
    seconds = time.monotonic() - t0  # the scrape, without decoding the page here
    return body.decode("utf-8", "replace"), seconds, len(body)


def counted_ringpipe(text):
    """Sum of bench_metric_<id>[_total] counters (statsd_exporter naming: dots become underscores)."""
    name = re.compile(r"^" + re.escape(PREFIX.replace(".", "_")) + r"_\d+(_total)?$")
    total, series = 0.0, 0
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if m and name.match(m.group(1)):
            total += float(m.group(3))
            series += 1
    return total, series


def counted_ringpipe_tags(text):
    """Sum of bench_metric[_total]{id="<id>"} counters (one name, the series in a label)."""
    name = re.compile(r"^" + re.escape(PREFIX.replace(".", "_")) + r"(_total)?$")
    label = re.compile(r'(^|[{,])id="\d+"')
    total, series = 0.0, 0
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if m and name.match(m.group(1)) and label.search(m.group(2) or ""):
            total += float(m.group(3))
            series += 1
    return total, series


def counted_collectd(text):
    """Sum of collectd_statsd_derive_total{statsd="bench.metric.<id>"} (statsd counters are derive, cumulative)."""
    label = re.compile(r'statsd="' + re.escape(PREFIX) + r'\.\d+"')
    total, series = 0.0, 0
    for line in text.splitlines():
        if not line.startswith("collectd_statsd_derive_total{"):
            continue
        m = SAMPLE.match(line)
        if m and label.search(m.group(2) or ""):
            total += float(m.group(3))
            series += 1
    return total, series


# The readiness probe adds 0 to the generator's first counter: a probe of a
# name of its own made the 1M-series scenarios 1,000,001 names, one past the
# default budget (max_metrics, max_series: 1M), and the pipeline rightly
# dropped and counted the samples of one generator series.
PROBE = f"{PREFIX}.0:0|c\n".encode()


def probe_seen(system, text):
    if system == "ringpipe":
        return re.search(r"^" + re.escape(PREFIX.replace(".", "_")) + r"_0(_total)?(\{[^}]*\})? ", text, re.M) is not None
    return f'statsd="{PREFIX}.0"' in text


# ---------------------------------------------------------------- systems


def start_ringpipe(args, tmp, statsd_port, web_port):
    run_dir = tempfile.mkdtemp(prefix="ringpipe-e2e-", dir="/dev/shm" if os.path.isdir("/dev/shm") else tmp)
    cmd = [args.ringpipe, "run",
           f"--statsd.listen-udp=127.0.0.1:{statsd_port}",
           f"--statsd.listen-tcp=127.0.0.1:{statsd_port}",
           f"--web.listen-address=127.0.0.1:{web_port}",
           "--run-dir", run_dir]
    return cmd, [run_dir]


def start_collectd(args, tmp, statsd_port, web_port):
    conf = os.path.join(tmp, "collectd.conf")
    with open(conf, "w") as f:
        f.write(f"""# Minimal: the statsd plugin in, write_prometheus out, nothing else.
Hostname "bench"
FQDNLookup false
BaseDir "{tmp}"
PIDFile "{tmp}/collectd.pid"
TypesDB "{args.collectd_types_db}"
Interval 1
AutoLoadPlugin false
LoadPlugin statsd
LoadPlugin write_prometheus
<Plugin statsd>
  Host "127.0.0.1"
  Port "{statsd_port}"
  DeleteCounters false
</Plugin>
<Plugin write_prometheus>
  Host "127.0.0.1"
  Port "{web_port}"
</Plugin>
""")
    return [args.collectd, "-f", "-C", conf], []


def by_tags(scenario):
    return len(scenario) > 5 and scenario[5] == "tags"


def scraped(scenario):
    """A scenario whose /metrics is scraped every second while the load runs."""
    return len(scenario) > 5 and scenario[5] == "scraped"


class Scraper(threading.Thread):
    """Scrapes `url` every second as Prometheus does (Accept-Encoding: gzip),
    reading each page whole and keeping it compressed: a Prometheus server
    would inflate it on its own machine. Counts the scrapes, the slowest, and
    those that failed."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.stop, self.times, self.failed, self.bytes = url, threading.Event(), [], 0, 0

    def run(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                req = urllib.request.Request(self.url, headers={"Accept-Encoding": "gzip"})
                with urllib.request.urlopen(req, timeout=30) as r:
                    self.bytes = len(r.read())
                self.times.append(time.monotonic() - t0)
            except OSError:
                self.failed += 1
            self.stop.wait(max(0.0, 1.0 - (time.monotonic() - t0)))


def run_one(args, system, scenario):
    name, series, lines, rate, _family = scenario[:5]
    by_tag = by_tags(scenario)
    tmp = tempfile.mkdtemp(prefix=f"e2e-{system}-")
    statsd_port, web_port = free_port(), free_port()
    while web_port == statsd_port:
        web_port = free_port()
    starter = start_ringpipe if system == "ringpipe" else start_collectd
    cmd, extra_dirs = starter(args, tmp, statsd_port, web_port)
    url = f"http://127.0.0.1:{web_port}/metrics"
    logf = open(os.path.join(tmp, f"{system}.log"), "w")
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    counted = counted_collectd if system != "ringpipe" else counted_ringpipe_tags if by_tag else counted_ringpipe
    row = {"scenario": name, "system": system, "series": series, "lines_per_packet": lines,
           "target_rate": rate, "error": "", "note": ""}
    scraper = None
    try:
        # Ready = a probe counter sent over UDP shows up in /metrics: the whole path works.
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        deadline = time.monotonic() + args.start_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{system} exited with {proc.returncode} during start (log: {logf.name})")
            probe.sendto(PROBE, ("127.0.0.1", statsd_port))
            try:
                text, _, _ = scrape(url, timeout=5)
                if probe_seen(system, text):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{system} not ready after {args.start_timeout}s (log: {logf.name})")
            time.sleep(0.25)
        probe.close()
        time.sleep(0.5)
        drops0 = udp_drops(statsd_port)
        cpu0 = tree_cpu_s(proc.pid)
        if scraped(scenario):
            scraper = Scraper(url)
            scraper.start()
        gen = subprocess.run(
            [args.ingest_bench, "--send-only", "--host", "127.0.0.1", "--port", str(statsd_port),
             "--seconds", str(args.seconds), "--rate", str(rate), "--series", str(series),
             "--lines", str(lines), "--prefix", PREFIX, "--tags", ""] + (["--series-tag", "id"] if by_tag else []),
            capture_output=True, text=True, timeout=args.seconds + 120)
        if scraper:
            scraper.stop.set()
            scraper.join()
            row.update(load_scrapes=len(scraper.times), load_scrapes_failed=scraper.failed,
                       load_scrape_max_s=max(scraper.times, default=0.0), load_scrape_bytes=scraper.bytes)
            row["note"] = (f"scraped every second during the load: {len(scraper.times)} scrapes "
                           f"(slowest {row['load_scrape_max_s']:.2f} s, {scraper.bytes / 1e6:.1f} MB as sent)"
                           + (f", {scraper.failed} failed" if scraper.failed else ""))
        if gen.returncode != 0:
            raise RuntimeError(f"generator failed: {gen.stderr.strip()} {gen.stdout.strip()}")
        kv = dict(f.split("=", 1) for f in gen.stdout.strip().splitlines()[-1].split())
        sent = int(kv["sent_lines"])
        gen_s = float(kv["seconds"])
        row.update(sent=sent, offered_rate=sent / gen_s if gen_s > 0 else 0,
                   generator_cpu_s=float(kv["generator_cpu_s"]))
        # Settle: wait, then scrape until the count stops moving (two equal scrapes in a row).
        time.sleep(args.settle)
        last, scrape_s, size, n_series, settled = None, 0.0, 0, 0, False
        deadline = time.monotonic() + args.settle_timeout
        while True:
            text, scrape_s, size = scrape(url)
            total, n_series = counted(text)
            settled = total == last
            if settled or time.monotonic() > deadline:
                break
            last = total
            time.sleep(1.0)
        cpu1 = tree_cpu_s(proc.pid)
        hwm, pss, nproc, per_process = tree_memory_mb(proc.pid)
        drops = udp_drops(statsd_port) - drops0
        if not settled:
            row["note"] = "; ".join(
                x for x in (row["note"], f"count still moving after {args.settle_timeout:g} s: a snapshot") if x)
        if proc.poll() is not None:
            row["error"] = f"{system} exited with {proc.returncode} during the run"
        row.update(counted=int(round(total)), series_seen=n_series,
                   delivered_pct=100.0 * total / sent if sent else 0.0,
                   cpu_s=cpu1 - cpu0,
                   cpu_s_per_m_lines=(cpu1 - cpu0) / (sent / 1e6) if sent else 0.0,
                   peak_rss_mb=hwm, pss_mb=pss, processes=nproc, pss_by_process=per_process,
                   kernel_udp_drops=drops, scrape_s=scrape_s, scrape_bytes=size)
    except Exception as e:  # one failed run must not stop the others
        row["error"] = str(e)
    finally:
        if scraper:
            scraper.stop.set()
        stop(proc)
        logf.close()
        for d in extra_dirs:
            shutil.rmtree(d, ignore_errors=True)
        if row["error"] and not args.keep_logs:
            row["error"] += " [logs removed; use --keep-logs]"
        if not args.keep_logs:
            shutil.rmtree(tmp, ignore_errors=True)
    return row


# ---------------------------------------------------------------- report


def machine_info(args):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    git = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    cver = subprocess.run([args.collectd, "-h"], capture_output=True, text=True).stdout
    m = re.search(r"collectd (\S+), http", cver)
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": " ".join(shlex.quote(a) for a in [sys.executable] + sys.argv),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "load_at_start": load,
        "ringpipe": f"{args.ringpipe} (git {git or '?'})",
        "collectd": f"{args.collectd} ({m.group(1) if m else '?'})",
        "seconds_per_run": args.seconds,
        "net.core.rmem_default": open("/proc/sys/net/core/rmem_default").read().strip(),
    }


def fmt_rate(r):
    return "max" if r == 0 else (f"{r / 1e6:g}M" if r >= 1e6 else f"{r / 1e3:g}k")


def write_markdown(path, info, rows, note):
    out = ["# ringpipe next to collectd: StatsD counters over UDP loopback", ""]
    if note:
        out += [f"**{note}**", ""]
    out += [f"- date: {info['date']}",
            f"- machine: {info['nproc']} CPUs, {info['cpu']}, Linux {info['kernel']}, load average at start {info['load_at_start']}",
            f"- ringpipe: {info['ringpipe']}, default pipeline (`ringpipe run` with statsd_exporter flags)",
            f"- collectd: {info['collectd']}, statsd + write_prometheus, Interval 1",
            f"- {info['seconds_per_run']} s of load per run; every system is started fresh for every run",
            f"- command: `{info['command']}`", "",
            "| scenario | system | offered lines/s | lines sent | lines counted | delivered | series in /metrics "
            "| CPU s / M lines | peak RSS MB | PSS MB | kernel UDP drops (pkts) | scrape s | note |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        if "sent" not in r:
            out.append(f"| {r['scenario']} | {r['system']} | | | | | | | | | | | {r['error']} |")
            continue
        out.append(
            f"| {r['scenario']} | {r['system']} | {r['offered_rate'] / 1e6:.3f} M | {r['sent']:,} | "
            f"{r.get('counted', 0):,} | {r.get('delivered_pct', 0):.2f} % | "
            f"{r.get('series_seen', 0):,} / {r['series']:,} | {r.get('cpu_s_per_m_lines', 0):.3f} | "
            f"{r.get('peak_rss_mb', 0):.0f} | {r.get('pss_mb', 0):.0f} | {r.get('kernel_udp_drops', 0):,} | "
            f"{r.get('scrape_s', 0):.3f} | {'; '.join(x for x in (r.get('note', ''), r['error']) if x)} |")
    out += ["",
            "offered = lines the generator handed to the kernel / its run time (target in the scenario name; "
            "`max` = unpaced). counted = sum of the generator's counter series in /metrics after the counts stopped "
            "moving (or the settle timeout passed: see note). series in /metrics = the generator's series found / "
            "generated. CPU = utime+stime of the whole process tree (supervisor and components) during load and settle. "
            "peak RSS = sum of VmHWM over the tree (shared ring pages count once per process that maps them); "
            "PSS = proportional set size at the end. See bench/e2e/README.md.", ""]
    with open(path, "w") as f:
        f.write("\n".join(out))
    return "\n".join(out)


def write_plot(outdir, rows, note):
    gp = shutil.which("gnuplot")
    if not gp:
        log("gnuplot not found: no plot")
        return None
    families = []
    for s in SCENARIOS:
        if s[4] not in families:
            families.append(s[4])
    fam_of = {s[0]: s[4] for s in SCENARIOS}
    datasets = []
    for si, system in enumerate(SYSTEMS):
        for fi, fam in enumerate(families):
            pts = sorted((r["offered_rate"], r["delivered_pct"]) for r in rows
                         if r["system"] == system and fam_of.get(r["scenario"]) == fam and "delivered_pct" in r)
            if not pts:
                continue
            dat = os.path.join(outdir, f"delivered-{system}-{fi}.dat")
            with open(dat, "w") as f:
                for x, y in pts:
                    f.write(f"{x / 1e6:.6f} {y:.4f}\n")
            color = "#1f77b4" if si == 0 else "#d62728"
            datasets.append(f"'{dat}' using 1:2 with linespoints lw 2 pt {5 + 2 * fi} ps 1.3 "
                            f"dt {fi + 1} lc rgb '{color}' title '{system}: {fam}'")
    if not datasets:
        return None
    png = os.path.join(outdir, "delivered.png")
    title = "Delivered % vs offered rate (StatsD counters, UDP loopback)"
    if note:
        short = note.replace('"', "").replace("\\", "")
        title += "\\n" + (short if len(short) <= 110 else short[:107] + "...")
    script = f"""set terminal pngcairo size 1000,640 noenhanced font ',11'
set output '{png}'
set title "{title}"
set xlabel 'offered rate (M lines/s, achieved by the generator)'
set ylabel 'lines counted in /metrics / lines sent (%)'
set logscale x
set yrange [0:105]
set grid
set key bottom left box opaque
plot {", ".join(datasets)}
"""
    r = subprocess.run([gp], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        # pngcairo may be missing in gnuplot-nox builds: fall back to the gd png terminal.
        script = script.replace("pngcairo size 1000,640 noenhanced font ',11'", "png size 1000,640 noenhanced")
        r = subprocess.run([gp], input=script, text=True, capture_output=True)
    for fi in range(len(families)):
        for system in SYSTEMS:
            try:
                os.remove(os.path.join(outdir, f"delivered-{system}-{fi}.dat"))
            except OSError:
                pass
    if r.returncode != 0:
        log(f"gnuplot failed: {r.stderr.strip()}")
        return None
    return png


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=5, help="load per run (default 5)")
    p.add_argument("--settle", type=float, default=2,
                   help="wait after the load before the first scrape (default 2; the count must then stop moving)")
    p.add_argument("--settle-timeout", type=float, default=30, help="give up waiting for the count to settle")
    p.add_argument("--start-timeout", type=float, default=30, help="wait for a system to be ready")
    p.add_argument("--quick", action="store_true", help="only " + ", ".join(QUICK))
    p.add_argument("--scenarios", help="comma-separated scenario names (default: all); --list shows them")
    p.add_argument("--systems", default=",".join(SYSTEMS), help="default: ringpipe,collectd")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--out", default=os.path.join(HERE, "results"), help="output dir (default bench/e2e/results)")
    p.add_argument("--note", default="", help="a line put at the top of the table and plot (e.g. 'noisy trial run')")
    p.add_argument("--build-dir", default=os.path.join(ROOT, "build", "release"))
    p.add_argument("--ringpipe", help="default: <build-dir>/apps/ringpipe")
    p.add_argument("--ingest-bench", help="default: <build-dir>/bench/ingest_bench")
    p.add_argument("--collectd", default=shutil.which("collectd") or "/usr/sbin/collectd")
    p.add_argument("--collectd-types-db", default="/usr/share/collectd/types.db")
    p.add_argument("--from-json", metavar="FILE",
                   help="run nothing: rewrite results.md and delivered.png in --out from a results.json")
    p.add_argument("--keep-logs", action="store_true", help="keep each run's temp dir (logs, collectd.conf)")
    args = p.parse_args()
    if args.list:
        for s in SCENARIOS:
            log(f"{s[0]:24} series={s[1]:<8} lines/packet={s[2]:<3} rate={fmt_rate(s[3])}"
                + (" (one name, series by tag; ringpipe only)" if by_tags(s) else ""))
        return 0
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        os.makedirs(args.out, exist_ok=True)
        note = args.note or saved.get("note", "")
        log(write_markdown(os.path.join(args.out, "results.md"), saved["info"], saved["rows"], note))
        write_plot(args.out, saved["rows"], note)
        return 0
    args.ringpipe = args.ringpipe or os.path.join(args.build_dir, "apps", "ringpipe")
    args.ingest_bench = args.ingest_bench or os.path.join(args.build_dir, "bench", "ingest_bench")
    systems = [s for s in args.systems.split(",") if s]
    for s in systems:
        if s not in SYSTEMS:
            p.error(f"--systems: unknown {s!r}")
    need = [args.ingest_bench] + ([args.ringpipe] if "ringpipe" in systems else []) + \
           ([args.collectd] if "collectd" in systems else [])
    for exe in need:
        if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            p.error(f"{exe} not found (build with ./build.sh build release; collectd: apt-get install "
                    "--no-install-recommends collectd-core libprotobuf-c1 libmicrohttpd12)")
    names = QUICK if args.quick else [s[0] for s in SCENARIOS]
    if args.scenarios:
        names = args.scenarios.split(",")
    by_name = {s[0]: s for s in SCENARIOS}
    for n in names:
        if n not in by_name:
            p.error(f"unknown scenario {n!r} (see --list)")
    os.makedirs(args.out, exist_ok=True)

    info = machine_info(args)
    log(f"command: {info['command']}")
    log(f"machine: {info['nproc']} CPUs, {info['cpu']}, Linux {info['kernel']}, load {info['load_at_start']}")
    log(f"date: {info['date']}; ringpipe {info['ringpipe']}; collectd {info['collectd']}")
    if args.note:
        log(f"note: {args.note}")
    rows = []
    for n in names:
        for system in systems:
            if by_tags(by_name[n]) and system != "ringpipe":
                log(f"{n:24} {system:9} not run: its StatsD parser takes no tags")
                continue
            r = run_one(args, system, by_name[n])
            rows.append(r)
            if "delivered_pct" in r:
                log(f"{n:24} {system:9} offered {r['offered_rate'] / 1e6:7.3f} M/s sent {r['sent']:>11,} "
                    f"counted {r['counted']:>11,} ({r['delivered_pct']:6.2f} %) "
                    f"cpu {r['cpu_s_per_m_lines']:.3f} s/M rss {r['peak_rss_mb']:.0f} MB "
                    f"drops {r['kernel_udp_drops']:,} series {r['series_seen']:,} scrape {r['scrape_s']:.3f} s "
                    f"{r['note']} {r['error']}")
                log(f"{'':24} {'':9} pss {r['pss_mb']:.0f} MB: " + "; ".join(
                    f"{x['process']} {x['pss']:.0f} (anon {x['anon']:.0f} shmem {x['shmem']:.0f} "
                    f"file {x['file']:.0f})" for x in r.get("pss_by_process", [])))
            else:
                log(f"{n:24} {system:9} FAILED: {r['error']}")

    md = write_markdown(os.path.join(args.out, "results.md"), info, rows, args.note)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"info": info, "note": args.note, "rows": rows}, f, indent=1)
    keys = ["scenario", "system", "series", "lines_per_packet", "target_rate", "offered_rate", "sent", "counted",
            "delivered_pct", "cpu_s", "cpu_s_per_m_lines", "peak_rss_mb", "pss_mb", "processes",
            "kernel_udp_drops", "scrape_s", "scrape_bytes", "series_seen", "generator_cpu_s", "load_scrapes",
            "load_scrape_max_s", "note", "error"]
    with open(os.path.join(args.out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    png = write_plot(args.out, rows, args.note)
    log("")
    log(md)
    log(f"wrote {args.out}/results.md, results.csv, results.json" + (f", {os.path.basename(png)}" if png else ""))
    return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
