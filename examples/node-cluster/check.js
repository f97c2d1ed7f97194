'use strict';
// Runs the example end to end and checks /metrics: `ringpipe run` with
// pipeline.yaml (on free ports, in a fresh run directory), the cluster, N
// requests; every request is counted exactly. Exit 0 when they all are.
// Env: RINGPIPE_BINARY (default build/release/apps/ringpipe), REQUESTS (3000).
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const root = path.join(__dirname, '..', '..');
process.env.RINGPIPE_BINARY ??= path.join(root, 'build', 'release', 'apps', 'ringpipe');
const h = require(path.join(root, 'node', 'tests', 'helpers.js'));
const requests = Number(process.env.REQUESTS ?? 3000);

async function main() {
  const dir = h.scratchDir();
  const [statsd, prom, web] = [await h.freePort(), await h.freePort(), await h.freePort()];
  const file = path.join(dir, 'pipeline.yaml');
  fs.writeFileSync(file, fs.readFileSync(path.join(__dirname, 'pipeline.yaml'), 'utf8')
    .replace('udp://127.0.0.1:9125', `udp://127.0.0.1:${statsd}`).replace('listen: 127.0.0.1:9102', `listen: 127.0.0.1:${prom}`));
  const log = fs.openSync(path.join(dir, 'run.err'), 'w');
  const run = spawn(process.env.RINGPIPE_BINARY, ['run', file, '--run-dir', dir], { stdio: ['ignore', log, log] });
  let app;
  try {
    if (!await h.waitFor(() => h.httpGet(prom))) {
      throw new Error('ringpipe run did not come up: ' + fs.readFileSync(path.join(dir, 'run.err'), 'utf8'));
    }
    app = spawn(process.execPath, [path.join(__dirname, 'cluster.js')], {
      env: { ...process.env, RING: path.join(dir, 'node-cluster', 'raw'), PORT: String(web), WORKERS: '2' },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (!await h.waitFor(() => h.httpGet(web, '/'), 10000)) throw new Error('the cluster did not come up');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    const routes = ['/', '/api', '/nope'];
    const sent = { '/': 1, '/api': 0, other: 0 };  // the readiness probe above was one request to /
    let next = 0;
    const get = (u) => new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: web, path: u, agent }, (res) => { res.resume(); res.on('end', resolve); })
        .on('error', reject);
    });
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < requests) {
        const u = routes[next++ % routes.length];
        await get(u);
        sent[u === '/nope' ? 'other' : u]++;
      }
    }));
    agent.destroy();
    const want = {
      'http_requests{app="node-cluster",route="/",status="200"}': sent['/'],
      'http_requests{app="node-cluster",route="/api",status="200"}': sent['/api'],
      'http_requests{app="node-cluster",route="other",status="404"}': sent.other,
      'http_request_duration_count{app="node-cluster",route="/api"}': sent['/api'],
    };
    let body;
    const ok = await h.waitFor(async () => {
      body = await h.httpGet(prom);
      return Object.entries(want).every(([k, v]) => h.seriesValue(body, k) === v);
    }, 20000);
    for (const [k, v] of Object.entries(want)) console.log(`${k} ${h.seriesValue(body, k)} (sent ${v})`);
    if (!ok) throw new Error('/metrics does not match the requests sent');
    console.log(`all ${requests + 1} requests counted exactly`);
  } finally {
    if (app) app.kill('SIGTERM');
    run.kill('SIGTERM');
    await h.waitFor(() => run.exitCode !== null || run.signalCode !== null, 10000);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e.message); process.exit(1); });
