'use strict';
// ringpipe for Node.js: write StatsD-style samples straight into a ringpipe
// ring (Client), read a ring's records in place (Reader), decode sample and
// metric batches. The native part is ringpipe.node (node/src/addon.cpp),
// built by ringpipe's CMake; see README.md.

const fs = require('node:fs');
const path = require('node:path');

function loadAddon() {
  const candidates = [];
  if (process.env.RINGPIPE_NODE_ADDON) candidates.push(path.resolve(process.env.RINGPIPE_NODE_ADDON));
  candidates.push(path.join(__dirname, 'ringpipe.node'));
  for (const preset of ['release', 'dev']) {
    candidates.push(path.join(__dirname, '..', 'build', preset, 'node', 'ringpipe.node'));
  }
  for (const c of candidates) {
    if (fs.existsSync(c)) return require(c);
  }
  throw new Error('ringpipe.node not found (looked at ' + candidates.join(', ') +
                  '): build ringpipe (cmake --build --preset release) or set RINGPIPE_NODE_ADDON');
}

const addon = loadAddon();

// sample/FORMAT.md's Kind.
const Kind = Object.freeze({
  counter: 1, gauge: 2, gaugeDelta: 3, timer: 4, histogram: 5, distribution: 6, set: 7,
});
// Ring record types (sample/FORMAT.md, metric/FORMAT.md).
const RecordType = Object.freeze({ sampleBatch: 1, metricBatch: 2 });

// Tags as hot-shots takes them: {key: value} or ['key:value', 'flag'] -> [k, v, k, v, ...].
function flattenTags(tags, out) {
  if (tags == null) return out;
  if (Array.isArray(tags)) {
    for (const t of tags) {
      const s = String(t);
      const i = s.indexOf(':');
      if (i < 0) out.push(s, ''); else out.push(s.slice(0, i), s.slice(i + 1));
    }
  } else if (typeof tags === 'object') {
    for (const k in tags) out.push(k, String(tags[k]));
  } else {
    throw new TypeError('tags must be an object or an array');
  }
  return out;
}

// hot-shots' optional arguments after the stat: (value?, sampleRate?, tags?, callback?).
function parseArgs(args, dflt) {
  let value = dflt;
  let rate;
  let tags;
  let cb;
  let numbers = 0;
  for (const a of args) {
    if (typeof a === 'function') cb = a;
    else if (typeof a === 'number' || a instanceof Date) {
      if (numbers++ === 0) value = a; else rate = a;
    } else if (a != null && typeof a === 'object') tags = a;
    else if (typeof a === 'string' && numbers === 0) { value = a; numbers++; }
  }
  return { value, rate, tags, cb };
}

class RefusedError extends Error {
  constructor(message) {
    super(message);
    this.name = 'RefusedError';
  }
}

// A producer lane of one ring, with the hot-shots method names. Samples are
// written into the ring's mapping as they come and published as one
// sample-batch record per event-loop turn (setImmediate) or every
// maxBatchSamples samples, whichever comes first.
class Client {
  constructor(options = {}) {
    const ringPath = options.path ?? options.ring;
    if (typeof ringPath !== 'string') throw new TypeError('options.path (the ring file) is required');
    this.prefix = options.prefix ?? '';
    this.suffix = options.suffix ?? '';
    this.sampleRate = options.sampleRate ?? 1;
    this.maxBatchSamples = options.maxBatchSamples ?? 1000;
    this.flushOn = options.flush ?? 'tick';
    this.globalTags = flattenTags(options.globalTags, []);
    this.refused = 0;
    this._w = new addon.Writer(ringPath, options.sourceId ?? 0, options.batchBytes ?? 65536,
                               options.blockTimeoutMs ?? 100);
    this._pending = 0;
    this._scheduled = false;
    this._closed = false;
    this._tick = () => {
      this._scheduled = false;
      if (!this._closed) this.flush();
    };
  }

  _after(n, ok, cb) {
    this._pending += n;
    if (this._pending >= this.maxBatchSamples) this.flush();
    else if (!this._scheduled && this.flushOn === 'tick' && this._pending > 0) {
      this._scheduled = true;
      setImmediate(this._tick);
    }
    if (!ok) this.refused++;
    if (cb) {
      const err = ok ? null : new RefusedError('ringpipe: sample refused (ring full or too large)');
      queueMicrotask(() => cb(err));
    }
    return ok;
  }

  _one(kind, stat, value, rate, tags, member, cb) {
    const r = rate ?? this.sampleRate;
    if (!(r > 0 && r <= 1)) throw new RangeError('sampleRate must be in (0, 1]');
    if (r < 1 && Math.random() >= r) { // sampled out, as hot-shots does
      if (cb) queueMicrotask(() => cb(null));
      return true;
    }
    const flat = this.globalTags.length || tags ? flattenTags(tags, this.globalTags.slice()) : undefined;
    if (Array.isArray(stat)) {
      let all = true;
      for (const s of stat) {
        all = this._w.append(kind, this.prefix + s + this.suffix, value, r, flat, member, 0) && all;
      }
      return this._after(stat.length, all, cb);
    }
    return this._after(1, this._w.append(kind, this.prefix + stat + this.suffix, value, r, flat, member, 0), cb);
  }

  increment(stat, ...args) {
    const a = parseArgs(args, 1);
    return this._one(Kind.counter, stat, Number(a.value), a.rate, a.tags, undefined, a.cb);
  }
  decrement(stat, ...args) {
    const a = parseArgs(args, 1);
    return this._one(Kind.counter, stat, -Number(a.value), a.rate, a.tags, undefined, a.cb);
  }
  gauge(stat, ...args) {
    const a = parseArgs(args, 0);
    return this._one(Kind.gauge, stat, Number(a.value), a.rate, a.tags, undefined, a.cb);
  }
  gaugeDelta(stat, ...args) {
    const a = parseArgs(args, 0);
    return this._one(Kind.gaugeDelta, stat, Number(a.value), a.rate, a.tags, undefined, a.cb);
  }
  // Milliseconds, or the Date the timed thing started; recorded in seconds as ingest does.
  timing(stat, ...args) {
    const a = parseArgs(args, 0);
    const ms = a.value instanceof Date ? Date.now() - a.value.getTime() : Number(a.value);
    return this._one(Kind.timer, stat, ms / 1000, a.rate, a.tags, undefined, a.cb);
  }
  histogram(stat, ...args) {
    const a = parseArgs(args, 0);
    return this._one(Kind.histogram, stat, Number(a.value), a.rate, a.tags, undefined, a.cb);
  }
  distribution(stat, ...args) {
    const a = parseArgs(args, 0);
    return this._one(Kind.distribution, stat, Number(a.value), a.rate, a.tags, undefined, a.cb);
  }
  set(stat, ...args) {
    const a = parseArgs(args, '');
    return this._one(Kind.set, stat, 0, a.rate, a.tags, String(a.value), a.cb);
  }
  unique(stat, ...args) { return this.set(stat, ...args); }

  // Many values of one series: values is a Float64Array, timestampsNs (optional)
  // a BigInt64Array or Float64Array of ns since the epoch. Returns the samples
  // accepted; the others were refused and counted.
  bulk(kind, stat, values, options = {}) {
    const k = typeof kind === 'number' ? kind : Kind[kind];
    if (!k) throw new RangeError('unknown kind ' + kind);
    const flat = this.globalTags.length || options.tags ? flattenTags(options.tags, this.globalTags.slice())
                                                         : undefined;
    const n = this._w.bulk(k, this.prefix + stat + this.suffix, values, flat, options.sampleRate ?? 1,
                           options.timestampsNs);
    this.refused += values.length - n;
    this._pending += values.length;
    this._after(0, true, undefined);
    return n;
  }

  // Publishes what is pending; returns the samples published.
  flush() {
    this._pending = 0;
    return this._w.flush();
  }
  // The writer's counters: written, refused, tooLarge, batches, pending, lane, overflow.
  stats() { return this._w.stats(); }
  close(cb) {
    // The native writer stays: a later call throws 'the writer is closed'.
    if (!this._closed) {
      this._closed = true;
      this._w.close();
    }
    if (cb) queueMicrotask(() => cb(null));
  }
}

// A named ring reader. poll(cb) hands cb(type, buf, lane, seq) each record;
// buf views the ring's mapping and is valid until cb returns (its memory is
// detached then); cb returning false stops the poll and leaves that record
// unread. A durable reader (the default) keeps its place across restarts and
// holds `block`/`drop` producers back until it has read.
class Reader {
  constructor(ringPath, name, options = {}) {
    this._r = new addon.Reader(ringPath, name, options.start ?? 'oldest', options.durable ?? true);
  }
  poll(cb, maxRecords = 1024) { return this._r.poll(cb, maxRecords); }
  // Samples of the sample-batch records, decoded: cb(sample, batch) per sample.
  pollSamples(cb, maxRecords = 1024) {
    return this._r.poll((type, buf) => {
      if (type !== RecordType.sampleBatch) return true;
      const batch = addon.decodeSampleBatch(buf);
      for (const s of batch.samples) cb(s, batch);
      return true;
    }, maxRecords);
  }
  // Blocks the thread up to ms for data (0: just asks); true when some is there.
  wait(ms) { return this._r.wait(ms); }
  stats() { return this._r.stats(); }
  close() { this._r.close(); }
}

module.exports = {
  Client,
  Reader,
  Kind,
  RecordType,
  RefusedError,
  decodeSampleBatch: addon.decodeSampleBatch,
  decodeMetricBatch: addon.decodeMetricBatch,
  ringStats: addon.ringStats,
  bufferAddress: addon.bufferAddress,
};
