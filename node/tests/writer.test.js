'use strict';
// node.writer: the Client (a producer lane) -> the real `ringpipe run`
// pipeline -> /metrics with exact totals; batching per tick and per N; the
// bounded wait of `block` and its counted refusal.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const rp = require('..');
const h = require('./helpers');

test('samples of every kind reach /metrics with exact totals', async () => {
  const p = await h.startPipeline();
  try {
    // Exact totals, not the bounded wait (its own test below): a loaded
    // machine may hold the processor back longer than the default 100 ms
    // while this loop fills the lane, and a refusal would be counted, not lost.
    const c = new rp.Client({ path: p.ringPath, globalTags: { svc: 'api' }, maxBatchSamples: 500,
                              blockTimeoutMs: 10000 });
    // Over many event-loop turns, with tags as an object and as hot-shots' array.
    for (let turn = 0; turn < 20; turn++) {
      for (let i = 0; i < 1500; i++) assert.equal(c.increment('node_hits', 1, { route: '/a' }), true);
      for (let i = 0; i < 250; i++) c.increment('node_hits', 2, ['route:/b']);
      // A negative counter increment is refused by the aggregator, as
      // statsd_exporter refuses it: /b stays at 500 a turn.
      c.decrement('node_hits', 1, { route: '/b' });
      c.timing('node_latency', 250, { route: '/a' });
      c.histogram('node_size', 4, { route: '/a' });
      await new Promise((r) => setImmediate(r));
    }
    c.gauge('node_temp', 21.5);
    c.gauge('node_temp', 22.25);
    c.gaugeDelta('node_queue', 5);
    c.gaugeDelta('node_queue', -2);
    // A counter at sample rate 1 in the bulk call: 10,000 sensor readings of 3.
    assert.equal(c.bulk('counter', 'node_bulk', new Float64Array(10000).fill(3)), 10000);
    const ts = new BigInt64Array(100).fill(BigInt(Date.now()) * 1000000n);
    assert.equal(c.bulk('gauge', 'node_sensor', new Float64Array(100).fill(7), { tags: { id: 's1' }, timestampsNs: ts }),
                 100);
    c.flush();
    const st = c.stats();
    assert.equal(st.written, 20 * 1753 + 4 + 10100);
    assert.equal(st.refused, 0);
    assert.equal(st.pending, 0);

    const want = {
      'node_hits{route="/a",svc="api"}': 30000,
      'node_hits{route="/b",svc="api"}': 20 * 500,
      'node_latency_count{route="/a",svc="api"}': 20,
      'node_latency_sum{route="/a",svc="api"}': 5,
      'node_size_count{route="/a",svc="api"}': 20,
      'node_size_sum{route="/a",svc="api"}': 80,
      'node_temp{svc="api"}': 22.25,
      'node_queue{svc="api"}': 3,
      'node_bulk{svc="api"}': 30000,
      'node_sensor{id="s1",svc="api"}': 7,
    };
    let body;
    const ok = await h.waitFor(async () => {
      body = await p.metrics();
      return Object.entries(want).every(([k, v]) => h.seriesValue(body, k) === v);
    });
    assert.ok(ok, 'metrics differ:\n' + Object.keys(want).map((k) => k + ' ' + h.seriesValue(body, k)).join('\n') +
                  '\n' + p.stderr());
    // One lane of the ring: this process's, with the records it published.
    const lane = rp.ringStats(p.ringPath).lane[st.lane];
    assert.equal(lane.ownerPid, process.pid);
    assert.equal(lane.records, st.batches);
    assert.equal(lane.droppedRecords, 0);
    c.close();
  } finally {
    await p.stop();
  }
});

test('a batch is published per event-loop turn or per maxBatchSamples samples', async () => {
  const dir = h.scratchDir();
  const ring = path.join(dir, 'r');
  h.createRing(ring, ['--size', '1MiB', '--lanes', '2', '--overflow', 'drop']);
  const c = new rp.Client({ path: ring, maxBatchSamples: 100 });
  for (let i = 0; i < 250; i++) c.increment('x');
  // 2 full batches published synchronously, 50 samples pending in the open claim.
  assert.deepEqual([c.stats().batches, c.stats().written, c.stats().pending], [2, 200, 50]);
  assert.equal(rp.ringStats(ring).lane[c.stats().lane].records, 2);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual([c.stats().batches, c.stats().written, c.stats().pending], [3, 250, 0]);
  // Every sample arrived, in three records.
  const r = new rp.Reader(ring, 'check');
  let samples = 0;
  let records = 0;
  r.pollSamples(() => { samples++; }, 100);
  r.poll(() => { records++; });
  assert.equal(samples, 250);
  r.close();
  c.close();
});

test('block: a full ring refuses after the bounded wait, counted, and nothing accepted is lost', async () => {
  const dir = h.scratchDir();
  const ring = path.join(dir, 'r');
  h.createRing(ring, ['--size', '64KiB', '--lanes', '2', '--overflow', 'block']);
  // A durable reader that does not read yet: producers wait for it.
  const r = new rp.Reader(ring, 'slow');
  const c = new rp.Client({ path: ring, blockTimeoutMs: 50, maxBatchSamples: 50, batchBytes: 4096 });
  let accepted = 0;
  let refused = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < 5000 && refused < 3; i++) {
    if (c.increment('blocked', 1)) accepted++; else refused++;
  }
  const waitedMs = Number(process.hrtime.bigint() - t0) / 1e6;
  c.flush();
  assert.equal(refused, 3);
  assert.ok(waitedMs >= 3 * 50 && waitedMs < 5000, `waited ${waitedMs} ms`);
  assert.equal(c.stats().refused, 3);
  assert.equal(c.refused, 3);
  assert.equal(rp.ringStats(ring).lane[c.stats().lane].droppedRecords, 3);
  // The callback form gets a RefusedError.
  const err = await new Promise((resolve) => c.increment('blocked', 1, (e) => resolve(e)));
  assert.ok(err instanceof rp.RefusedError);
  // Every accepted sample is in the ring, exactly once.
  let seen = 0;
  while (r.pollSamples((s) => { seen += s.value; }) > 0);
  assert.equal(seen, accepted);
  assert.equal(c.stats().written, accepted);
  // With room again, writes go through.
  assert.equal(c.increment('blocked', 1), true);
  c.close();
  r.close();
});

test('the series cache: each distinct name and tag set stays its own series, in order, also past the cache bound',
     () => {
  const dir = h.scratchDir();
  const ring = path.join(dir, 'r');
  h.createRing(ring, ['--size', '4MiB', '--lanes', '2', '--overflow', 'drop']);
  // A small cache (8 nodes) that starts over many times, and small batches.
  const c = new rp.Client({ path: ring, flush: 'manual', maxBatchSamples: 1e9, batchBytes: 2048,
                            seriesCacheSize: 8, prefix: 'p_', globalTags: { g: '1' } });
  const want = [];
  const tagsOf = (i) => [
    undefined, {}, { a: 'x' }, { a: 'y' }, { a: 'x', b: 'y' }, { b: 'y', a: 'x' }, ['a:x'], ['a', 'x'],
    { a: i % 3 }, { 'a1': 'x' }, { a: '1x' }, ['a:1', 'x'],
  ][i % 12];
  const flat = (t) => {
    const out = { g: '1' };
    if (Array.isArray(t)) for (const s of t) { const j = s.indexOf(':'); out[j < 0 ? s : s.slice(0, j)] = j < 0 ? '' : s.slice(j + 1); }
    else if (t) for (const k in t) out[k] = String(t[k]);
    return out;
  };
  for (let i = 0; i < 3000; i++) {
    const t = tagsOf(i);
    const name = ['n', 'm', 'n1'][i % 5 % 3];
    if (i % 7 === 0) {
      assert.equal(c.set(name, 'member' + i, t), true);
      want.push({ kind: 'set', name: 'p_' + name, value: 0, member: 'member' + i, tags: flat(t) });
    } else if (i % 7 === 1) {
      assert.equal(c.gauge(name, i, t), true);
      want.push({ kind: 'gauge', name: 'p_' + name, value: i, tags: flat(t) });
    } else {
      assert.equal(c.increment(name, i, t), true);
      want.push({ kind: 'counter', name: 'p_' + name, value: i, tags: flat(t) });
    }
    if (i === 1500) assert.equal(c.bulk('counter', 'bulk', new Float64Array([5, 6])), 2);
    if (i === 1500) for (const v of [5, 6]) want.push({ kind: 'counter', name: 'p_bulk', value: v, tags: { g: '1' } });
  }
  // The pending count includes what is staged on the JavaScript side.
  assert.ok(c.stats().pending > 0);
  c.flush();
  const st = c.stats();
  assert.equal(st.written, want.length);
  assert.equal(st.refused, 0);
  assert.ok(st.batches > 10, `${st.batches} batches`);
  const got = [];
  const r = new rp.Reader(ring, 'check');
  while (r.pollSamples((s) => {
    const o = { kind: s.kind, name: s.name, value: s.value, tags: s.tags };
    if (s.kind === 'set') o.member = s.member;
    got.push(o);
  }) > 0);
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) assert.deepEqual(got[i], want[i], `sample ${i}`);
  r.close();
  c.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('repeats of one series and the calls that differ from it by a tag, a value, a kind each stay their own series',
     () => {
  const dir = h.scratchDir();
  const ring = path.join(dir, 'r');
  h.createRing(ring, ['--size', '4MiB', '--lanes', '2', '--overflow', 'drop']);
  const c = new rp.Client({ path: ring, flush: 'manual', maxBatchSamples: 1e9, batchBytes: 2048, seriesCacheSize: 6 });
  const mutable = { a: 'x' };
  const calls = [
    ['increment', 'n', { a: 'x' }], ['increment', 'n', { a: 'x' }], ['increment', 'n', { a: 'y' }],
    ['increment', 'n', { a: 'x', b: 'y' }], ['increment', 'n', { a: 'x' }], ['increment', 'n', {}],
    ['increment', 'n', undefined], ['increment', 'n', { a: 'x' }], ['gauge', 'n', { a: 'x' }],
    ['increment', 'm', { a: 'x' }], ['increment', 'n', { b: 'x' }], ['increment', 'n', { a: 1 }],
    ['increment', 'n', { a: '1' }], ['increment', 'n', ['a:x']], ['increment', 'n', { a: 'x' }],
    ['increment', 'n', mutable], ['mutate'], ['increment', 'n', mutable], ['increment', 'n', { a: 'xx' }],
  ];
  const want = [];
  for (let round = 0; round < 40; round++) {
    mutable.a = 'x';
    for (const [method, name, tags] of calls) {
      if (method === 'mutate') {
        mutable.a = 'z';
        continue;
      }
      for (let k = 0; k < 1 + (round % 3); k++) {
        const value = round + k;
        assert.equal(c[method](name, value, tags), true);
        const t = {};
        if (Array.isArray(tags)) t.a = 'x';
        else if (tags) for (const key in tags) t[key] = String(tags[key]);
        want.push({ kind: method === 'gauge' ? 'gauge' : 'counter', name, value, tags: t });
      }
    }
  }
  c.flush();
  assert.equal(c.stats().written, want.length);
  const got = [];
  const r = new rp.Reader(ring, 'check');
  while (r.pollSamples((s) => { got.push({ kind: s.kind, name: s.name, value: s.value, tags: s.tags }); }) > 0);
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) assert.deepEqual(got[i], want[i], `sample ${i}`);
  r.close();
  c.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
