'use strict';
// node.reader: a named, durable reader hands records as Buffers that view the
// ring's mapping (zero copy) and are emptied when the callback returns; the
// sample and metric decoders check every length before a byte reaches
// JavaScript; a reader that re-attaches by name resumes where it stopped.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const rp = require('..');
const h = require('./helpers');

// The address ranges where this process maps `file` (/proc/self/maps).
function mappingsOf(file) {
  const real = fs.realpathSync(file);
  return fs.readFileSync('/proc/self/maps', 'utf8').split('\n')
    .filter((l) => l.endsWith(' ' + real))
    .map((l) => l.split(' ')[0].split('-').map((x) => BigInt('0x' + x)));
}

function freshRing(args = ['--size', '1MiB', '--lanes', '2', '--overflow', 'drop']) {
  const dir = h.scratchDir();
  const ring = path.join(dir, 'r');
  h.createRing(ring, args);
  return { dir, ring, done: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

test('records are Buffers over the mapping, valid for the callback only', () => {
  const { ring, done } = freshRing();
  const r = new rp.Reader(ring, 'zc');
  const c = new rp.Client({ path: ring, flush: 'manual' });
  const maps = mappingsOf(ring);
  assert.ok(maps.length > 0, 'the ring is not mapped in this process');
  const inMapping = (buf) => {
    const at = rp.bufferAddress(buf);
    return maps.some(([lo, hi]) => at >= lo && at + BigInt(buf.length) <= hi);
  };
  // As in C++, a reader gets checked copies until the producers have seen
  // it (two of their scans of the readers, as they pass their limits); from
  // then on every record is handed in place. The lane (512 KiB) wraps
  // several times over these 200 batches.
  let kept;
  let firstInPlace = -1;
  let records = 0;
  let samples = 0;
  let prevSeq;
  for (let b = 0; b < 200; b++) {
    for (let i = 0; i < 199; i++) c.increment('zc', 1, { k: 'v' });
    c.set('members', 'alice');
    c.flush();
    r.poll((type, buf, lane, seq) => {
      assert.equal(type, rp.RecordType.sampleBatch);
      assert.equal(lane, c.stats().lane);
      if (prevSeq !== undefined) assert.equal(seq, prevSeq + 1n);  // per lane, one apart
      prevSeq = seq;
      if (inMapping(buf)) {
        if (firstInPlace < 0) firstInPlace = records;
      } else {
        assert.equal(firstInPlace, -1, `record ${records} was copied after record ${firstInPlace} was not`);
      }
      const batch = rp.decodeSampleBatch(buf);
      assert.equal(batch.error, null);
      assert.deepEqual(batch.samples.slice(-2).map((s) => [s.kind, s.name, s.value, s.sampleRate, s.tags, s.member]),
                       [['counter', 'zc', 1, 1, { k: 'v' }, undefined], ['set', 'members', 0, 1, {}, 'alice']]);
      samples += batch.samples.length;
      records++;
      kept = buf;
    });
  }
  assert.equal(records, 200);
  assert.equal(samples, 200 * 200);
  assert.ok(firstInPlace >= 0 && firstInPlace < 100, `first record read in place: ${firstInPlace}`);
  // Past the callback the view is detached: it reads as empty, never as reused ring bytes.
  assert.equal(kept.length, 0);
  assert.equal(kept.buffer.byteLength, 0);
  r.close();
  c.close();
  done();
});

test('a durable reader resumes by name; false or a throw leaves the record unread', () => {
  const { ring, done } = freshRing();
  const c = new rp.Client({ path: ring, flush: 'manual' });
  for (let b = 0; b < 10; b++) {
    c.histogram('seq', b, { batch: String(b) });
    c.flush();
  }
  let r = new rp.Reader(ring, 'durable');
  const got = [];
  // Takes 3 records, refuses the 4th.
  r.pollSamples((s) => got.push(s.value), 3);
  assert.deepEqual(got, [0, 1, 2]);
  assert.equal(r.poll(() => false), 0);
  assert.throws(() => r.poll(() => { throw new Error('boom'); }), /boom/);
  r.close();
  // New writes, then the same name again: it continues at record 3, nothing lost or repeated.
  for (let b = 10; b < 12; b++) {
    c.histogram('seq', b, { batch: String(b) });
    c.flush();
  }
  r = new rp.Reader(ring, 'durable');
  r.pollSamples((s) => got.push(s.value));
  assert.deepEqual(got, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  assert.equal(r.stats().name, 'durable');
  assert.equal(r.wait(0), false);
  // Another live reader may not take the name.
  assert.throws(() => new rp.Reader(ring, 'durable'), /durable/);
  r.close();
  c.close();
  done();
});

test('the decoders refuse malformed bytes with the C++ decoder error, reading nothing past them', () => {
  const { ring, done } = freshRing();
  const c = new rp.Client({ path: ring });
  c.timing('t', 1500, { a: 'b' });
  c.gauge('g', 2);
  c.flush();
  const r = new rp.Reader(ring, 'dec');
  let rec;
  r.poll((type, buf) => { rec = Buffer.from(buf); });
  r.close();
  const ok = rp.decodeSampleBatch(rec);
  assert.equal(ok.error, null);
  assert.deepEqual(ok.samples.map((s) => [s.kind, s.name, s.value]), [['timer', 't', 1.5], ['gauge', 'g', 2]]);
  assert.equal(rp.decodeSampleBatch(rec.subarray(0, 10)).error, 'truncated_header');
  const v = Buffer.from(rec);
  v.writeUInt16LE(9, 0);
  assert.equal(rp.decodeSampleBatch(v).error, 'bad_version');
  const len = Buffer.from(rec);
  len.writeUInt32LE(rec.length + 4096, 12);
  assert.equal(rp.decodeSampleBatch(len).error, 'bad_length');
  const kind = Buffer.from(rec);
  kind[24 + 34] = 99;  // the first entry's kind
  const bk = rp.decodeSampleBatch(kind);
  assert.deepEqual([bk.error, bk.samples.length], ['bad_kind', 0]);
  const size = Buffer.from(rec);
  // The second entry's size made to run past the batch: the first sample still decodes.
  const first = rec.readUInt32LE(24 + 24);
  size.writeUInt32LE(1 << 20, 24 + first + 24);
  const bs = rp.decodeSampleBatch(size);
  assert.deepEqual([bs.error, bs.samples.length], ['bad_entry', 1]);
  assert.equal(rp.decodeMetricBatch(rec.subarray(0, 8)).error, 'truncated_header');
  c.close();
  done();
});

test('metric records of a pipeline decode into series with their labels and values', async () => {
  const p = await h.startPipeline();
  try {
    const metricsRing = path.join(path.dirname(p.ringPath), 'metrics');
    const r = new rp.Reader(metricsRing, 'node-view', { durable: false });
    const c = new rp.Client({ path: p.ringPath });
    for (let i = 0; i < 42; i++) c.increment('node_view_hits', 1, { route: '/x' });
    c.flush();
    let found;
    const ok = await h.waitFor(() => {
      r.poll((type, buf) => {
        if (type !== rp.RecordType.metricBatch) return;
        const b = rp.decodeMetricBatch(buf);
        assert.equal(b.error, null);
        for (const e of b.entries) {
          if (e.kind === 'series' && e.name === 'node_view_hits') found = e;
        }
      });
      return found && found.values[0] === 42;
    });
    assert.ok(ok, JSON.stringify(found, (k, v) => (typeof v === 'bigint' ? v.toString() : v)));
    assert.equal(found.type, 'counter');
    assert.deepEqual(found.labels, { route: '/x' });
    assert.equal(typeof found.key, 'bigint');
    r.close();
    c.close();
  } finally {
    await p.stop();
  }
});

test('decodeSampleBatch builds the same objects as the native per-sample decoder, also for a damaged batch', () => {
  const { ring, done } = freshRing(['--size', '4MiB', '--lanes', '2', '--overflow', 'drop']);
  const native = require(process.env.RINGPIPE_NODE_ADDON);
  const c = new rp.Client({ path: ring, flush: 'manual', maxBatchSamples: 1e9, batchBytes: 256 * 1024 });
  for (let i = 0; i < 300; i++) {
    c.increment('hits', i, { route: '/r' + (i % 4), 'é': 'ü' + i });
    c.set('users', 'u' + (i % 7), ['env:prod', 'flag']);
    c.timing(['t1', 't2'], i / 3);
    c.gauge('g', -i);
  }
  c.bulk('gauge', 'sensor', new Float64Array([1.5, 2.5]), { sampleRate: 0.5,
                                                          timestampsNs: new BigInt64Array([1n, 1700000000123456789n]) });
  // Runs of timestamps (the decoder makes one BigInt per run): equal, new, back to the first.
  c.bulk('gauge', 'sensor', new Float64Array([1, 2, 3, 4]), { timestampsNs: new BigInt64Array([5n, 5n, 6n, 5n]) });
  c.flush();
  const r = new rp.Reader(ring, 'dec');
  const recs = [];
  r.poll((type, buf) => { recs.push(Buffer.from(buf)); });
  r.close();
  assert.equal(recs.length, 1);
  const rec = recs[0];
  const want = native.decodeSampleBatch(rec);
  assert.equal(want.samples.length, 1506);
  assert.deepEqual(want.samples.slice(-6).map((x) => x.timestampNs), [1n, 1700000000123456789n, 5n, 5n, 6n, 5n]);
  assert.deepEqual(rp.decodeSampleBatch(rec), want);
  // An ArrayBuffer, and a batch cut short by a damaged entry size: the samples before it and the error.
  assert.deepEqual(rp.decodeSampleBatch(rec.buffer.slice(rec.byteOffset, rec.byteOffset + rec.length)), want);
  const bad = Buffer.from(rec);
  let off = 24;
  for (let i = 0; i < 700; i++) off += bad.readUInt32LE(off + 24);
  bad.writeUInt32LE(3, off + 24);
  const got = rp.decodeSampleBatch(bad);
  assert.deepEqual([got.error, got.samples.length], ['bad_entry', 700]);
  assert.deepEqual(got, native.decodeSampleBatch(bad));
  assert.throws(() => rp.decodeSampleBatch(123), TypeError);
  c.close();
  done();
});
