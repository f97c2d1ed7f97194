'use strict';
// One run, three ways for a Node.js process to get the same counter samples
// into ringpipe (bench/node/README.md):
//   (a) the addon: a Client writes them into the pipeline's sample ring;
//   (b) hot-shots: StatsD lines over UDP into the same pipeline's source;
//   (c) process.send: the objects to a master process that aggregates them.
// For each: samples/s, CPU per sample (the sender alone, and the sender plus
// whoever turns the samples into a total: ringpipe's components for (a) and
// (b), the master for (c)), and the share of the samples in the total.
// Then the JS Reader's throughput over a ring of sample batches, read in place.
//
// Usage: node bench/node/bench.js [--addon N] [--hotshots N] [--send N]
// Needs a release build (build/release) and, for (b), `npm install hot-shots`
// in bench/node/ (the only npm package anything here uses).

const { fork, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..', '..');
process.env.RINGPIPE_NODE_ADDON ??= path.join(root, 'build', 'release', 'node', 'ringpipe.node');
process.env.RINGPIPE_BINARY ??= path.join(root, 'build', 'release', 'apps', 'ringpipe');
const binary = process.env.RINGPIPE_BINARY;
const readBench = process.env.RINGPIPE_READ_BENCH ?? path.join(root, 'build', 'release', 'bench', 'node', 'ring_read_bench');
const h = require(path.join(root, 'node', 'tests', 'helpers.js'));
const rp = require(path.join(root, 'node'));

const arg = (name, dflt) => {
  const i = process.argv.indexOf('--' + name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const TICK = 100;  // USER_HZ on Linux
const N = { addon: arg('addon', 2000000), hotshots: arg('hotshots', 500000), send: arg('send', 500000) };

// CPU seconds of pid and its descendants (utime + stime, /proc).
function cpuOfTree(pid) {
  let total = 0;
  const kids = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      kids.set(Number(d), { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / TICK });
    } catch { /* gone */ }
  }
  const walk = (p) => {
    const me = kids.get(p);
    if (me) total += me.cpu;
    for (const [k, v] of kids) if (v.ppid === p) walk(k);
  };
  walk(pid);
  return total;
}

function child(mode, ...args) {
  const p = fork(__filename, ['--child', mode, ...args.map(String)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  p.exited = once(p, 'exit');
  return p;
}
const once = (p, ev) => new Promise((r) => p.once(ev, r));

async function pipelineTotal(pipe, series, want) {
  let v;
  await h.waitFor(async () => (v = h.seriesValue(await pipe.metrics(), series)) === want, 15000, 100);
  return v ?? 0;
}

function row(name, n, wallS, senderCpu, totalCpu, got) {
  const pct = (100 * got / n).toFixed(2);
  console.log(`${name.padEnd(22)} ${String(n).padStart(9)} ${(n / wallS / 1e6).toFixed(3).padStart(9)} M/s` +
              `  sender ${(senderCpu * 1e9 / n).toFixed(0).padStart(6)} ns/sample` +
              `  receiver ${((totalCpu - senderCpu) * 1e9 / n).toFixed(0).padStart(6)} ns/sample` +
              `  total ${(totalCpu * 1e9 / n).toFixed(0).padStart(6)} ns/sample` +
              `  ${(n / totalCpu / 1e6).toFixed(3).padStart(7)} M samples/CPU-s  in total ${pct} %`);
  return n / totalCpu;
}

async function main() {
  process.env.RINGPIPE_BINARY = binary;
  console.log(`ringpipe ${binary}\naddon ${process.env.RINGPIPE_NODE_ADDON}\n${os.cpus().length} CPUs, node ${process.version}\n`);
  const pipe = await h.startPipeline({ size: '64MiB', flush: '200ms' });
  const perCpu = {};
  try {
    // (a) the addon
    {
      const before = cpuOfTree(pipe.proc.pid);
      const c = child('addon', pipe.ringPath, N.addon);
      const m = await once(c, 'message');
      const got = await pipelineTotal(pipe, 'bench_addon{route="/api"}', N.addon);
      await c.exited;
      const pipeCpu = cpuOfTree(pipe.proc.pid) - before;
      perCpu.addon = row('(a) addon -> ring', N.addon, m.wall, m.cpu, m.cpu + pipeCpu, got);
    }
    // (b) hot-shots over UDP
    let hotshots = true;
    try { require.resolve('hot-shots', { paths: [__dirname] }); } catch { hotshots = false; }
    if (hotshots) {
      const before = cpuOfTree(pipe.proc.pid);
      const c = child('hotshots', pipe.statsdPort, N.hotshots);
      const m = await once(c, 'message');
      const got = await pipelineTotal(pipe, 'bench_hotshots{route="/api"}', N.hotshots);
      await c.exited;
      const pipeCpu = cpuOfTree(pipe.proc.pid) - before;
      perCpu.hotshots = row('(b) hot-shots UDP', N.hotshots, m.wall, m.cpu, m.cpu + pipeCpu, got);
    } else {
      console.log('(b) hot-shots UDP       skipped: `npm install hot-shots` in bench/node/ first');
    }
  } finally {
    await pipe.stop();
  }
  // (c) process.send to an aggregating master
  {
    const c = child('send', N.send);
    const t0 = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    let total = 0;
    let childStats;
    await new Promise((resolve) => {
      c.on('message', (m) => {
        if (m.done) { childStats = m; resolve(); return; }
        total += m.value;  // the master's aggregation: one counter
      });
    });
    await c.exited;
    const masterCpu = process.cpuUsage(cpu0);
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const mcpu = (masterCpu.user + masterCpu.system) / 1e6;
    perCpu.send = row('(c) process.send', N.send, wall, childStats.cpu, childStats.cpu + mcpu, total);
  }
  console.log(`\naddon / process.send: ${(perCpu.addon / perCpu.send).toFixed(1)}x samples per CPU-second` +
              (perCpu.hotshots ? `; addon / hot-shots: ${(perCpu.addon / perCpu.hotshots).toFixed(1)}x` : ''));
  readerBench();
}

// The Reader over a ring filled with N samples in batches of 1000: records
// handed in place, and samples decoded into objects; then the C++ reader
// (ring_read_bench) over the same ring, the same ways.
function readerBench() {
  const dir = h.scratchDir();
  const ring = path.join(dir, 'r');
  h.createRing(ring, ['--size', '256MiB', '--lanes', '1', '--overflow', 'drop']);
  const n = 2000000;
  const r = new rp.Reader(ring, 'bench');
  const c = new rp.Client({ path: ring, maxBatchSamples: 1000, flush: 'manual' });
  const values = new Float64Array(1000).fill(1);
  for (let i = 0; i < n / 1000; i++) { c.bulk('counter', 'bench_read', values, { tags: { k: 'v' } }); c.flush(); }
  let t0 = process.hrtime.bigint();
  let records = 0;
  let bytes = 0;
  while (r.poll((type, buf) => { records++; bytes += buf.length; }, 1 << 20) > 0);
  let s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`\nReader (views, no decode): ${records} records, ${(bytes / s / 1e9).toFixed(2)} GB/s,` +
              ` ${(n / s / 1e6).toFixed(1)} M samples/s carried`);
  const jsViews = n / s;
  r.close();
  const r2 = new rp.Reader(ring, 'bench2');
  t0 = process.hrtime.bigint();
  let samples = 0;
  while (r2.pollSamples(() => { samples++; }, 1 << 20) > 0);
  s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`Reader + decodeSampleBatch into objects: ${samples} samples, ${(samples / s / 1e6).toFixed(2)} M samples/s`);
  const jsObjects = samples / s;
  r2.close();
  c.close();
  const cpp = spawnSync(readBench, [ring, 'cpp'], { encoding: 'utf8' });
  if (cpp.status !== 0) {
    console.log(`C++ reader skipped: ${readBench} ${cpp.error ?? cpp.stderr}`);
  } else {
    const m = JSON.parse(cpp.stdout);
    console.log(`C++ reader (views, no decode): ${m.views.records} records, ${(m.views.bytes / m.views.seconds / 1e9).toFixed(2)} GB/s,` +
                ` ${(n / m.views.seconds / 1e6).toFixed(1)} M samples/s carried`);
    console.log(`C++ reader + BatchReader (fields viewed): ${m.decode.samples} samples, ${(m.decode.samples / m.decode.seconds / 1e6).toFixed(2)} M samples/s`);
    console.log(`C++ reader + BatchReader into owned objects: ${m.objects.samples} samples, ${(m.objects.samples / m.objects.seconds / 1e6).toFixed(2)} M samples/s`);
    const cppViews = n / m.views.seconds;
    console.log(`\nJS / C++ reader: views ${(jsViews / cppViews).toFixed(2)}x; objects ${(jsObjects / (m.objects.samples / m.objects.seconds)).toFixed(2)}x` +
                ` (objects vs fields viewed: ${(jsObjects / (m.decode.samples / m.decode.seconds)).toFixed(2)}x)`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

async function childMain(mode, args) {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const done = (extra = {}) => {
    const u = process.cpuUsage(cpu0);
    process.send({ done: true, cpu: (u.user + u.system) / 1e6, wall: Number(process.hrtime.bigint() - t0) / 1e9,
                   ...extra }, () => process.exit(0));
  };
  if (mode === 'addon') {
    const [ring, n] = [args[0], Number(args[1])];
    const c = new rp.Client({ path: ring, blockTimeoutMs: 5000 });
    for (let i = 0; i < n; i += 1000) {
      for (let j = 0; j < 1000; j++) c.increment('bench_addon', 1, { route: '/api' });
      if (i % 100000 === 0) await new Promise((r) => setImmediate(r));
    }
    c.flush();
    done({ refused: c.stats().refused });
  } else if (mode === 'hotshots') {
    const StatsD = require(require.resolve('hot-shots', { paths: [__dirname] }));
    const [port, n] = [Number(args[0]), Number(args[1])];
    const c = new StatsD({ host: '127.0.0.1', port, protocol: 'udp', maxBufferSize: 1400, bufferFlushInterval: 5 });
    for (let i = 0; i < n; i += 1000) {
      for (let j = 0; j < 1000; j++) c.increment('bench_hotshots', 1, { route: '/api' });
      await new Promise((r) => setImmediate(r));  // let the socket drain
    }
    await new Promise((r) => c.close(r));
    done();
  } else if (mode === 'send') {
    const n = Number(args[0]);
    for (let i = 0; i < n; i += 1000) {
      for (let j = 0; j < 1000; j++) process.send({ name: 'bench_send', value: 1, tags: { route: '/api' } });
      await new Promise((r) => setImmediate(r));
    }
    done();
  }
}

if (process.argv[2] === '--child') childMain(process.argv[3], process.argv.slice(4));
else main().catch((e) => { console.error(e); process.exit(1); });
