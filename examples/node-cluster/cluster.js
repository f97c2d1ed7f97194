'use strict';
// A Node.js cluster whose workers record request metrics through the
// ringpipe addon: each worker is a producer of the ring (its own lane), and
// a request costs a few hundred nanoseconds of metrics work, no datagram.
// Env: RING (the ring file), PORT (8080), WORKERS (2), RINGPIPE_NODE_ADDON
// (where ringpipe.node is, if not in build/release or build/dev).
const cluster = require('node:cluster');
const http = require('node:http');
const path = require('node:path');

const ring = process.env.RING ?? '/dev/shm/ringpipe/node-cluster/raw';
const port = Number(process.env.PORT ?? 8080);
const workers = Number(process.env.WORKERS ?? 2);

if (cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork();
  let listening = 0;
  cluster.on('listening', () => {
    if (++listening === workers) console.log(`listening on 127.0.0.1:${port} (${workers} workers), ring ${ring}`);
  });
  const stop = () => {
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  // `require('ringpipe')` in a project that installed the package (npm install /path/to/ringpipe/node).
  const { Client } = require(path.join(__dirname, '..', '..', 'node'));
  const metrics = new Client({ path: ring, globalTags: { app: 'node-cluster' } });
  const server = http.createServer((req, res) => {
    const t0 = process.hrtime.bigint();
    const route = req.url === '/' || req.url === '/api' ? req.url : 'other';
    res.on('finish', () => {
      metrics.increment('http_requests', 1, { route, status: String(res.statusCode) });
      metrics.timing('http_request_duration', Number(process.hrtime.bigint() - t0) / 1e6, { route });
    });
    res.statusCode = route === 'other' ? 404 : 200;
    res.end(route === 'other' ? 'not found\n' : 'ok\n');
  });
  server.listen(port, '127.0.0.1');
  process.on('SIGTERM', () => {
    server.close();
    metrics.close();  // publishes what is pending
    process.exit(0);
  });
}
