'use strict';
// What the node tests share: a fresh run directory, the real `ringpipe run`
// on 127.0.0.1, /metrics scrapes and bounded waits. RINGPIPE_BINARY and
// RINGPIPE_NODE_ADDON come from ctest (node/CMakeLists.txt).

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const binary = process.env.RINGPIPE_BINARY;
if (!binary) throw new Error('RINGPIPE_BINARY is not set (run the tests through ctest)');

// On tmpfs where there is one, as the C++ tests' ScratchDir (rings live in /dev/shm).
function scratchDir() {
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  return fs.mkdtempSync(path.join(base, 'ringpipe-node-'));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn (maybe async) until it returns a truthy value or `ms` pass; returns the last value.
async function waitFor(fn, ms = 20000, every = 50) {
  const until = Date.now() + ms;
  let v;
  for (;;) {
    v = await fn();
    if (v || Date.now() >= until) return v;
    await sleep(every);
  }
}

function httpGet(port, urlPath = '/metrics') {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve(res.statusCode === 200 ? body : null));
    });
    req.on('error', () => resolve(null));
    req.on('timeout', () => { req.destroy(); resolve(null); });
  });
}

// The value of one exposition line, `name{labels} value`, matched exactly
// (labels as Prometheus prints them, sorted by name); undefined when absent.
function seriesValue(body, series) {
  if (!body) return undefined;
  for (const line of body.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

// Starts `ringpipe run` on a pipeline with a sample ring `raw` (a StatsD source
// on UDP writes it too), an aggregator and a Prometheus exporter.
async function startPipeline({ overflow = 'block', size = '4MiB', lanes = 8, flush = '100ms' } = {}) {
  const dir = scratchDir();
  const statsd = await freePort();
  const prom = await freePort();
  const file = path.join(dir, 'p.yaml');
  fs.writeFileSync(file, `pipeline: n
run_dir: ${dir}
rings:
  raw: {size: ${size}, lanes: ${lanes}, overflow: ${overflow}}
  metrics: {size: 4MiB}
sources:
  statsd: {type: statsd, listen: [udp://127.0.0.1:${statsd}], output: raw}
processors:
  aggregate: {type: aggregate, input: raw, output: metrics, flush_interval: ${flush}}
exporters:
  prom: {type: prometheus, input: metrics, listen: 127.0.0.1:${prom}}
`);
  const err = fs.openSync(path.join(dir, 'run.err'), 'w');
  const proc = spawn(binary, ['run', file], { stdio: ['ignore', err, err] });
  const ringPath = path.join(dir, 'n', 'raw');
  const stderr = () => fs.readFileSync(path.join(dir, 'run.err'), 'utf8');
  // Up once /metrics answers (the rings exist by then: components start after them).
  const up = await waitFor(() => httpGet(prom), 20000);
  if (!up) {
    proc.kill('SIGKILL');
    throw new Error('ringpipe run did not come up: ' + stderr());
  }
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const exited = await waitFor(() => proc.exitCode !== null || proc.signalCode !== null, 10000);
      if (!exited) proc.kill('SIGKILL');
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { dir, file, proc, ringPath, statsdPort: statsd, promPort: prom, stderr, stop,
           metrics: () => httpGet(prom) };
}

// `ringpipe ring create` (the C++ code makes the file, as a pipeline would).
function createRing(file, args) {
  const r = spawnSync(binary, ['ring', 'create', file, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error('ring create failed: ' + r.stderr);
}

module.exports = { binary, scratchDir, freePort, sleep, waitFor, httpGet, seriesValue, startPipeline, createRing };
