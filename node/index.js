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

// parseArgs for the usual four arguments, into one reused object (no array per call).
// The fields are read at once by the caller, before any user code can run.
const scratchArgs = { value: undefined, rate: undefined, tags: undefined, cb: undefined };
function takeArg(x, a, numbers) {
  if (a == null) return numbers;
  const t = typeof a;
  if (t === 'function') x.cb = a;
  else if (t === 'number' || a instanceof Date) {
    if (numbers === 0) x.value = a; else x.rate = a;
    return numbers + 1;
  } else if (t === 'object') x.tags = a;
  else if (t === 'string' && numbers === 0) {
    x.value = a;
    return 1;
  }
  return numbers;
}
function args4(dflt, a, b, c, d) {
  const x = scratchArgs;
  x.value = dflt;
  x.rate = undefined;
  x.tags = undefined;
  x.cb = undefined;
  takeArg(x, d, takeArg(x, c, takeArg(x, b, takeArg(x, a, 0))));
  return x;
}

// The series cache: per kind, a tree of Maps from the name, then each tag
// key and value in turn (an array of tags: ARRAY, then each element), to a
// node holding the registered series. Looking a call up takes a few Map
// lookups of strings V8 has already hashed; no key string is built.
const ARRAY = Symbol('array tags');
class SeriesNode {
  constructor() {
    this.e = undefined;  // {id, bytes}; null: never fits a batch; undefined: not registered
    this.m = undefined;  // Map to the next level
  }
}
function next(node, s) {
  const m = node.m;
  return m === undefined ? undefined : m.get(s);
}
// The node of tags under a name's node, or undefined when not there yet.
function findTags(node, tags) {
  if (Array.isArray(tags)) {
    node = next(node, ARRAY);
    for (let i = 0; i < tags.length && node !== undefined; i++) node = next(node, String(tags[i]));
    return node;
  }
  if (typeof tags !== 'object') throw new TypeError('tags must be an object or an array');
  for (const k in tags) {
    if (node === undefined) return undefined;
    node = next(node, k);
    if (node === undefined) return undefined;
    node = next(node, String(tags[k]));
  }
  return node;
}

// Samples staged in JavaScript before one native call writes them into the batch.
const STAGE = 1024;

class RefusedError extends Error {
  constructor(message) {
    super(message);
    this.name = 'RefusedError';
  }
}

// A producer lane of one ring, with the hot-shots method names. Samples are
// published as one sample-batch record per event-loop turn (setImmediate) or
// every maxBatchSamples samples, whichever comes first.
//
// Each distinct (kind, name, tags) is registered once with the native writer,
// which keeps its encoded name and tags; a call then stages only the series
// id, the value and the sample rate in a Float64Array, and one native call
// writes the staged samples into the batch (per STAGE samples, per batch and
// before anything else touches the writer). Whether a sample is accepted is
// still known at the call: the JavaScript side keeps the room left in the
// claimed batch, so a sample that does not fit publishes the batch and claims
// the next one, exactly as a native append would.
class Client {
  constructor(options = {}) {
    const ringPath = options.path ?? options.ring;
    if (typeof ringPath !== 'string') throw new TypeError('options.path (the ring file) is required');
    this.prefix = options.prefix ?? '';
    this.suffix = options.suffix ?? '';
    this.sampleRate = options.sampleRate ?? 1;
    this.maxBatchSamples = options.maxBatchSamples ?? 1000;
    this.flushOn = options.flush ?? 'tick';
    this.seriesCacheSize = options.seriesCacheSize ?? 100000;
    this.globalTags = flattenTags(options.globalTags, []);
    this.refused = 0;
    this._w = new addon.Writer(ringPath, options.sourceId ?? 0, options.batchBytes ?? 65536,
                               options.blockTimeoutMs ?? 100);
    this._pending = 0;
    this._scheduled = false;
    this._closed = false;
    this._stage = new Float64Array(3 * STAGE);
    this._n = 0;         // samples staged
    this._room = -1;     // bytes left in the open batch after the staged ones; -1: none open
    this._series = [];   // per kind: Map name -> SeriesNode
    for (let k = 0; k <= Kind.set; k++) this._series.push(new Map());
    this._nodes = 0;     // SeriesNodes in the cache
    this._lastKind = 0;  // the series of the last call: kind, stat, flat tags, entry
    this._lastStat = undefined;
    this._lastTags = [];
    this._lastE = undefined;
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

  // The registered series of (kind, stat, tags); null when one sample of it never fits a batch.
  _lookup(kind, stat, tags) {
    // The series of the call before, again (a loop recording one series): a
    // few string compares instead of the Map lookups. Object tags only; their
    // values compare as the strings they were registered with.
    if (kind === this._lastKind && stat === this._lastStat && this._lastE !== undefined) {
      const lt = this._lastTags;
      if (tags == null) {
        if (lt.length === 0) return this._lastE;
      } else if (typeof tags === 'object' && !Array.isArray(tags)) {
        let i = 0;
        let same = true;
        for (const k in tags) {
          if (i >= lt.length || lt[i] !== k || lt[i + 1] !== tags[k]) {
            same = false;
            break;
          }
          i += 2;
        }
        if (same && i === lt.length) return this._lastE;
      }
    }
    const e = this._find(kind, stat, tags);
    this._lastKind = kind;
    this._lastStat = stat;
    this._lastE = e;
    const lt = this._lastTags;
    lt.length = 0;
    if (tags != null && typeof tags === 'object' && !Array.isArray(tags)) {
      for (const k in tags) lt.push(k, String(tags[k]));
    } else if (tags != null) {
      this._lastE = undefined;  // array tags: not remembered
    }
    return e;
  }

  _find(kind, stat, tags) {
    let node = this._series[kind].get(stat);
    if (node !== undefined && tags != null) node = findTags(node, tags);
    if (node !== undefined && node.e !== undefined) return node.e;
    return this._register(kind, stat, tags);
  }

  _register(kind, stat, tags) {
    if (this._nodes >= this.seriesCacheSize) {
      // Bounded: start over (the staged samples name the old ids; write them first).
      this._drain();
      this._w.clearSeries();
      this._lastE = undefined;
      for (const m of this._series) m.clear();
      this._nodes = 0;
    }
    const flat = this.globalTags.length || tags ? flattenTags(tags, this.globalTags.slice()) : undefined;
    const e = this._w.addSeries(kind, this.prefix + stat + this.suffix, flat);  // throws on bad tags
    const add = (node, s) => {
      if (node.m === undefined) node.m = new Map();
      let c = node.m.get(s);
      if (c === undefined) {
        c = new SeriesNode();
        node.m.set(s, c);
        this._nodes++;
      }
      return c;
    };
    let node = this._series[kind].get(stat);
    if (node === undefined) {
      node = new SeriesNode();
      this._series[kind].set(stat, node);
      this._nodes++;
    }
    if (Array.isArray(tags)) {
      node = add(node, ARRAY);
      for (let i = 0; i < tags.length; i++) node = add(node, String(tags[i]));
    } else if (tags != null) {
      for (const k in tags) node = add(add(node, k), String(tags[k]));
    }
    node.e = e;
    return e;
  }

  // Writes the staged samples into the open batch (not published).
  _drain() {
    const n = this._n;
    if (n === 0) return;
    this._n = 0;
    const accepted = this._w.write(this._stage, n);
    this.refused += n - accepted;  // none unless the ring file was cut short under us
  }

  _put(kind, stat, value, r, tags, member) {
    if (this._closed) throw new Error('the writer is closed');
    const e = kind === Kind.set ? null : this._lookup(kind, stat, tags);
    if (e === null) {
      // A set's member, or too large for any batch: the native append, after what is staged.
      this._drain();
      const flat = this.globalTags.length || tags ? flattenTags(tags, this.globalTags.slice()) : undefined;
      const ok = this._w.append(kind, this.prefix + stat + this.suffix, value, r, flat, member, 0);
      this._room = this._w.room();
      return ok;
    }
    if (e.bytes > this._room) {
      // It does not fit the open batch: publish that one, claim the next.
      if (this._room >= 0) {
        this._drain();
        this._w.flush();
      }
      this._room = this._w.open();
      if (this._room < 0) return false;  // refused after the bounded wait (counted natively)
    }
    const o = 3 * this._n;
    const st = this._stage;
    st[o] = e.id;
    st[o + 1] = value;
    st[o + 2] = r;
    this._room -= e.bytes;
    if (++this._n === STAGE) this._drain();
    return true;
  }

  _one(kind, stat, value, rate, tags, member, cb) {
    const r = rate ?? this.sampleRate;
    if (!(r > 0 && r <= 1)) throw new RangeError('sampleRate must be in (0, 1]');
    if (r < 1 && Math.random() >= r) { // sampled out, as hot-shots does
      if (cb) queueMicrotask(() => cb(null));
      return true;
    }
    if (Array.isArray(stat)) {
      let all = true;
      for (const s of stat) all = this._put(kind, s, value, r, tags, member) && all;
      return this._after(stat.length, all, cb);
    }
    return this._after(1, this._put(kind, stat, value, r, tags, member), cb);
  }

  // Each method takes hot-shots' (value?, sampleRate?, tags?, callback?).
  increment(stat, a, b, c, d) {
    if (arguments.length > 5) return this._many(Kind.counter, 1, 1, stat, arguments);
    const x = args4(1, a, b, c, d);
    return this._one(Kind.counter, stat, Number(x.value), x.rate, x.tags, undefined, x.cb);
  }
  decrement(stat, a, b, c, d) {
    if (arguments.length > 5) return this._many(Kind.counter, 1, -1, stat, arguments);
    const x = args4(1, a, b, c, d);
    return this._one(Kind.counter, stat, -Number(x.value), x.rate, x.tags, undefined, x.cb);
  }
  gauge(stat, a, b, c, d) {
    if (arguments.length > 5) return this._many(Kind.gauge, 0, 1, stat, arguments);
    const x = args4(0, a, b, c, d);
    return this._one(Kind.gauge, stat, Number(x.value), x.rate, x.tags, undefined, x.cb);
  }
  gaugeDelta(stat, a, b, c, d) {
    if (arguments.length > 5) return this._many(Kind.gaugeDelta, 0, 1, stat, arguments);
    const x = args4(0, a, b, c, d);
    return this._one(Kind.gaugeDelta, stat, Number(x.value), x.rate, x.tags, undefined, x.cb);
  }
  // Milliseconds, or the Date the timed thing started; recorded in seconds as ingest does.
  timing(stat, a, b, c, d) {
    const x = arguments.length > 5 ? parseArgs(Array.prototype.slice.call(arguments, 1), 0) : args4(0, a, b, c, d);
    const ms = x.value instanceof Date ? Date.now() - x.value.getTime() : Number(x.value);
    return this._one(Kind.timer, stat, ms / 1000, x.rate, x.tags, undefined, x.cb);
  }
  histogram(stat, a, b, c, d) {
    if (arguments.length > 5) return this._many(Kind.histogram, 0, 1, stat, arguments);
    const x = args4(0, a, b, c, d);
    return this._one(Kind.histogram, stat, Number(x.value), x.rate, x.tags, undefined, x.cb);
  }
  distribution(stat, a, b, c, d) {
    if (arguments.length > 5) return this._many(Kind.distribution, 0, 1, stat, arguments);
    const x = args4(0, a, b, c, d);
    return this._one(Kind.distribution, stat, Number(x.value), x.rate, x.tags, undefined, x.cb);
  }
  set(stat, a, b, c, d) {
    const x = arguments.length > 5 ? parseArgs(Array.prototype.slice.call(arguments, 1), '') : args4('', a, b, c, d);
    const { value, rate, tags, cb } = x;
    return this._one(Kind.set, stat, 0, rate, tags, String(value), cb);
  }
  unique(stat, ...args) { return this.set(stat, ...args); }

  // More arguments than hot-shots defines: the general parser.
  _many(kind, dflt, sign, stat, args) {
    const x = parseArgs(Array.prototype.slice.call(args, 1), dflt);
    return this._one(kind, stat, sign * Number(x.value), x.rate, x.tags, undefined, x.cb);
  }

  // Many values of one series: values is a Float64Array, timestampsNs (optional)
  // a BigInt64Array or Float64Array of ns since the epoch. Returns the samples
  // accepted; the others were refused and counted.
  bulk(kind, stat, values, options = {}) {
    const k = typeof kind === 'number' ? kind : Kind[kind];
    if (!k) throw new RangeError('unknown kind ' + kind);
    const flat = this.globalTags.length || options.tags ? flattenTags(options.tags, this.globalTags.slice())
                                                         : undefined;
    this._drain();
    const n = this._w.bulk(k, this.prefix + stat + this.suffix, values, flat, options.sampleRate ?? 1,
                           options.timestampsNs);
    this._room = this._w.room();
    this.refused += values.length - n;
    this._pending += values.length;
    this._after(0, true, undefined);
    return n;
  }

  // Publishes what is pending; returns the samples published.
  flush() {
    this._pending = 0;
    this._drain();
    this._room = -1;
    return this._w.flush();
  }
  // The writer's counters: written, refused, tooLarge, batches, pending, lane, overflow.
  stats() {
    if (!this._closed) this._drain();
    return this._w.stats();
  }
  close(cb) {
    // The native writer stays: a later call throws 'the writer is closed'.
    if (!this._closed) {
      this._drain();
      this._closed = true;
      this._w.close();
    }
    if (cb) queueMicrotask(() => cb(null));
  }
}

const kindNames = ['', 'counter', 'gauge', 'gauge_delta', 'timer', 'histogram', 'distribution', 'set'];

// A sample-batch record into plain objects: the native decoder checks and
// splits it into columns (decodeSampleColumns), the objects are made here.
function decodeSampleBatch(bytes) {
  const c = addon.decodeSampleColumns(bytes);
  const { count, kinds, numbers, timestamps, timeRefs, refs, tags, strings } = c;
  const samples = new Array(count);
  let lastRun = -1;
  let lastTs;
  let lastFirst = -1;
  let lastCount = -1;
  let lastTags;
  for (let i = 0; i < count; i++) {
    const k = kinds[i];
    const r = 4 * i;
    if (timeRefs[i] !== lastRun) {  // a new run of timestamps: its one BigInt
      lastRun = timeRefs[i];
      lastTs = timestamps[lastRun];
    }
    const s = { kind: kindNames[k], name: strings[refs[r]], value: numbers[2 * i], sampleRate: numbers[2 * i + 1],
                timestampNs: lastTs };
    if (k === Kind.set) s.member = strings[refs[r + 1]];
    // The tags of the previous sample again (the same indices): a copy of its object.
    const firstTag = refs[r + 2];
    const tagCount = refs[r + 3];
    let t;
    if (firstTag === lastFirst && tagCount === lastCount) {
      t = { ...lastTags };
    } else {
      t = {};
      for (let j = 2 * firstTag, end = j + 2 * tagCount; j < end; j += 2) t[strings[tags[j]]] = strings[tags[j + 1]];
      lastFirst = firstTag;
      lastCount = tagCount;
      lastTags = t;
    }
    s.tags = t;
    samples[i] = s;
  }
  return { sourceId: c.sourceId, receivedNs: c.receivedNs, samples, error: c.error };
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
      const batch = decodeSampleBatch(buf);
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
  decodeSampleBatch,
  decodeMetricBatch: addon.decodeMetricBatch,
  ringStats: addon.ringStats,
  bufferAddress: addon.bufferAddress,
};
