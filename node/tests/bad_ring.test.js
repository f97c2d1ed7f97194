'use strict';
// node.bad_ring: a file that is not a sound ring is refused by the Client,
// the Reader and ringStats with the very message the C++ open gives
// (`ringpipe ring inspect` prints it), as a JS Error: the process never crashes.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const rp = require('..');
const h = require('./helpers');

function cppMessage(file) {
  const r = spawnSync(h.binary, ['ring', 'inspect', file], { encoding: 'utf8' });
  assert.notEqual(r.status, 0, 'ringpipe ring inspect accepted ' + file);
  const prefix = 'ringpipe ring inspect: ';
  const line = r.stderr.trim();
  assert.ok(line.startsWith(prefix), line);
  return line.slice(prefix.length);
}

function patch(file, offset, bytes) {
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.from(bytes), 0, bytes.length, offset);
  fs.closeSync(fd);
}

test('bad ring files are refused with the C++ message', () => {
  const dir = h.scratchDir();
  const good = path.join(dir, 'good');
  h.createRing(good, ['--size', '64KiB', '--lanes', '2']);
  const cases = {
    missing: () => {},
    empty: (f) => fs.writeFileSync(f, ''),
    not_a_ring: (f) => fs.writeFileSync(f, Buffer.alloc(8192, 0x5a)),
    other_version: (f) => { fs.copyFileSync(good, f); patch(f, 8, [1]); },
    truncated: (f) => { fs.copyFileSync(good, f); fs.truncateSync(f, 10000); },
    geometry_changed: (f) => { fs.copyFileSync(good, f); patch(f, 24, [0xff, 0xff, 0xff, 0x7f]); },
    a_directory: (f) => fs.mkdirSync(f),
  };
  const seen = new Set();
  for (const [name, make] of Object.entries(cases)) {
    const file = path.join(dir, name);
    make(file);
    const want = cppMessage(file);
    seen.add(want);
    assert.throws(() => new rp.Client({ path: file }), (e) => e instanceof Error && e.message === want, name);
    assert.throws(() => new rp.Reader(file, 'r'), (e) => e instanceof Error && e.message === want, name);
    assert.throws(() => rp.ringStats(file), (e) => e instanceof Error && e.message === want, name);
  }
  // The cases are distinct refusals, not one generic one.
  assert.ok(seen.size >= 5, [...seen].join('\n'));
  // The good ring opens.
  const c = new rp.Client({ path: good });
  assert.equal(c.increment('ok'), true);
  c.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('bad arguments throw JS errors', () => {
  const dir = h.scratchDir();
  const ring = path.join(dir, 'r');
  h.createRing(ring, ['--size', '64KiB', '--lanes', '2']);
  const c = new rp.Client({ path: ring });
  assert.throws(() => c.increment('x', 1, 0), RangeError);  // sample rate 0
  assert.throws(() => c.bulk('counter', 'x', [1, 2]), TypeError);
  assert.throws(() => c.bulk('set', 'x', new Float64Array(1)), RangeError);
  assert.throws(() => c.bulk('counter', 'x', new Float64Array(2), { timestampsNs: new BigInt64Array(1) }), TypeError);
  assert.throws(() => c.increment('x', 1, { k: 'v'.repeat(70000) }), RangeError);
  const tags = {};
  for (let i = 0; i < 65; i++) tags['k' + i] = 'v';
  assert.throws(() => c.increment('x', 1, tags), RangeError);
  // A name too long for one batch is refused (false), not written.
  assert.equal(c.increment('n'.repeat(60000)), false);
  assert.equal(c.stats().tooLarge, 1);
  c.close();
  assert.throws(() => c.increment('x'), /closed/);
  assert.throws(() => rp.decodeSampleBatch('nope'), TypeError);
  fs.rmSync(dir, { recursive: true, force: true });
});
