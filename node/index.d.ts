// Types of the ringpipe Node.js package (index.js; the native part is ringpipe.node).

export type Tags = Record<string, string | number> | string[];
export type Callback = (error: Error | null) => void;

export declare const Kind: Readonly<{
  counter: 1; gauge: 2; gaugeDelta: 3; timer: 4; histogram: 5; distribution: 6; set: 7;
}>;
export type KindName = keyof typeof Kind;
export declare const RecordType: Readonly<{ sampleBatch: 1; metricBatch: 2 }>;

export declare class RefusedError extends Error {}

export interface ClientOptions {
  /** The ring file, e.g. /dev/shm/ringpipe/default/raw. */
  path: string;
  prefix?: string;
  suffix?: string;
  globalTags?: Tags;
  /** Default sample rate; a call with rate < 1 is kept with that probability, as hot-shots does. */
  sampleRate?: number;
  /** Publish after this many samples (default 1000), besides once per event-loop turn. */
  maxBatchSamples?: number;
  /** 'tick' (default): publish at the end of each event-loop turn; 'manual': only by count and flush(). */
  flush?: 'tick' | 'manual';
  /** Bytes claimed per batch record (default 64 KiB, at most the ring's max record). */
  batchBytes?: number;
  /** Under `block`, how long a full ring is waited for before the sample is refused (default 100). */
  blockTimeoutMs?: number;
  /** Entries of the cache of registered (kind, name, tags) series (default 100000); it starts over when full. */
  seriesCacheSize?: number;
  /** Written into each batch header (the pipeline's source numbering). */
  sourceId?: number;
}

export interface WriterStats {
  written: number;
  refused: number;
  tooLarge: number;
  batches: number;
  pending: number;
  lane: number;
  overflow: 'block' | 'drop' | 'overwrite';
}

type StatArgs = [value?: number, sampleRate?: number, tags?: Tags, callback?: Callback] | any[];

export declare class Client {
  constructor(options: ClientOptions);
  /** Each returns false when the sample was refused (ring full past the wait, or too large). */
  increment(stat: string | string[], ...args: StatArgs): boolean;
  decrement(stat: string | string[], ...args: StatArgs): boolean;
  gauge(stat: string | string[], ...args: StatArgs): boolean;
  gaugeDelta(stat: string | string[], ...args: StatArgs): boolean;
  /** Milliseconds (or the Date it started); recorded in seconds. */
  timing(stat: string | string[], ...args: any[]): boolean;
  histogram(stat: string | string[], ...args: StatArgs): boolean;
  distribution(stat: string | string[], ...args: StatArgs): boolean;
  set(stat: string | string[], member: string | number, ...args: any[]): boolean;
  unique(stat: string | string[], member: string | number, ...args: any[]): boolean;
  /** Many values of one series; returns the samples accepted. */
  bulk(kind: KindName | number, stat: string, values: Float64Array,
       options?: { tags?: Tags; sampleRate?: number; timestampsNs?: BigInt64Array | Float64Array }): number;
  /** Publishes the pending batch; returns its samples. */
  flush(): number;
  stats(): WriterStats;
  close(callback?: Callback): void;
  refused: number;
}

export interface Sample {
  kind: 'counter' | 'gauge' | 'gauge_delta' | 'timer' | 'histogram' | 'distribution' | 'set';
  name: string;
  value: number;
  sampleRate: number;
  timestampNs: bigint;
  member?: string;
  tags: Record<string, string>;
}
export interface SampleBatch {
  sourceId: number;
  receivedNs: bigint;
  samples: Sample[];
  /** null, or the C++ decoder's error name (truncated_header, bad_version, bad_length, bad_entry, bad_kind, bad_tags). */
  error: string | null;
}
export interface MetricEntry {
  kind: 'series' | 'expire' | 'snapshot_begin' | 'snapshot_end';
  type?: 'counter' | 'gauge' | 'summary' | 'histogram';
  name?: string;
  help?: string;
  labels?: Record<string, string>;
  key: bigint;
  values: number[];
}
export interface MetricBatch {
  shard: number;
  shardCount: number;
  instanceId: bigint;
  flushSeq: bigint;
  entries: MetricEntry[];
  error: string | null;
}

export interface ReaderOptions {
  start?: 'oldest' | 'latest';
  durable?: boolean;
}
export interface ReaderStats {
  name: string;
  records: number;
  bytes: number;
  lappedRecords: number;
  tornRecords: number;
  corruptRecords: number;
  lagBytes: number;
}

export declare class Reader {
  constructor(ringPath: string, name: string, options?: ReaderOptions);
  /** buf views the mapping and is valid until the callback returns; return false to stop and leave it unread. */
  poll(callback: (type: number, buf: Buffer, lane: number, seq: bigint) => boolean | void, maxRecords?: number): number;
  pollSamples(callback: (sample: Sample, batch: SampleBatch) => void, maxRecords?: number): number;
  wait(ms: number): boolean;
  stats(): ReaderStats;
  close(): void;
}

export interface LaneStats {
  lane: number;
  owned: boolean;
  ownerPid: number;
  records: number;
  droppedRecords: number;
  recoveredClaims: number;
}
export declare function ringStats(path: string): { overflow: string; lanes: number; lane: LaneStats[] };
export declare function decodeSampleBatch(bytes: Uint8Array | ArrayBuffer): SampleBatch;
export declare function decodeMetricBatch(bytes: Uint8Array | ArrayBuffer): MetricBatch;
export declare function bufferAddress(bytes: Uint8Array | ArrayBuffer): bigint;
