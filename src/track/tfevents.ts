/**
 * TensorBoard event files, written without TensorFlow: a hand-encoded `Event` protobuf in TFRecord framing.
 *
 * A file is a sequence of records; each record is
 * `u64 length (LE) | u32 masked crc32c(length bytes) | data | u32 masked crc32c(data)` where
 * `masked(c) = ((c >>> 15) | (c << 17)) + 0xa282ead8 (mod 2^32)` (tensorflow/core/lib/hash/crc32c.h, `Mask`).
 * The first event of a file carries `file_version: "brain.Event:2"`; the others carry a `Summary` of scalars.
 *
 * The messages (tensorflow/core/util/event.proto, tensorflow/core/framework/summary.proto):
 * ```
 * message Event   { double wall_time = 1; int64 step = 2; oneof what { string file_version = 3; Summary summary = 5; } }
 * message Summary { repeated Value value = 1;
 *                   message Value { string tag = 1; float simple_value = 2; HistogramProto histo = 5; } }
 * message HistogramProto { double min = 1; double max = 2; double num = 3; double sum = 4; double sum_squares = 5;
 *                          repeated double bucket_limit = 6 [packed = true]; repeated double bucket = 7 [packed = true]; }
 * ```
 * TensorBoard reads `simple_value` scalars and `histo` histograms directly (its data_compat layer turns them into
 * tensors); a histogram's bucket i spans (bucket_limit[i-1], bucket_limit[i]], the first one from `min`.
 */
import { crc32c } from '@aws-crypto/crc32c';

/** The `file_version` of the first event of every file. */
export const FILE_VERSION = 'brain.Event:2';

/** One scalar of a summary: a tag (`train/loss`) and its value, stored as float32. */
export interface Scalar {
  tag: string;
  value: number;
}

/** One histogram of a summary, as TensorBoard's HistogramProto. */
export interface TbHistogram {
  tag: string;
  min: number;
  max: number;
  num: number;
  sum: number;
  sumSquares: number;
  /** The right edge of each bucket. */
  bucketLimit: readonly number[];
  /** The count of each bucket. */
  bucket: readonly number[];
}

/** An event: its wall time in seconds since the epoch, its step, and either the file version or scalars. */
export interface TfEvent {
  wallTime: number;
  step?: number;
  fileVersion?: string;
  scalars?: readonly Scalar[];
  histograms?: readonly TbHistogram[];
}

/** crc32c with TensorFlow's mask, so that a crc of data that holds crcs stays well distributed. */
export function maskedCrc32c(data: Uint8Array): number {
  const crc = crc32c(data);
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}

/** A record: length, masked crc of the length, data, masked crc of the data. */
export function frameRecord(data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(data.length + 16);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}

/** The protobuf bytes of an `Event`. */
export function encodeEvent(event: TfEvent): Uint8Array {
  const w = new ProtoWriter();
  w.double(1, event.wallTime);
  if (event.step !== undefined) w.uint(2, event.step);
  if (event.fileVersion !== undefined) w.string(3, event.fileVersion);
  if (event.scalars !== undefined || event.histograms !== undefined) {
    const summary = new ProtoWriter();
    for (const s of event.scalars ?? []) {
      const value = new ProtoWriter();
      value.string(1, s.tag);
      value.float(2, s.value);
      summary.bytes(1, value.finish());
    }
    for (const hist of event.histograms ?? []) {
      const value = new ProtoWriter();
      value.string(1, hist.tag);
      value.bytes(5, encodeHistogramProto(hist));
      summary.bytes(1, value.finish());
    }
    w.bytes(5, summary.finish());
  }
  return w.finish();
}

/** The protobuf bytes of a `HistogramProto` (the repeated doubles packed, as proto3 writes them). */
function encodeHistogramProto(hist: TbHistogram): Uint8Array {
  const w = new ProtoWriter();
  w.double(1, hist.min);
  w.double(2, hist.max);
  w.double(3, hist.num);
  w.double(4, hist.sum);
  w.double(5, hist.sumSquares);
  w.bytes(6, packedDoubles(hist.bucketLimit));
  w.bytes(7, packedDoubles(hist.bucket));
  return w.finish();
}

function packedDoubles(v: readonly number[]): Uint8Array {
  const b = Buffer.allocUnsafe(v.length * 8);
  for (let i = 0; i < v.length; i++) b.writeDoubleLE(v[i]!, i * 8);
  return b;
}

/** The bytes of a whole event file: the file-version event, then `events`. */
export function encodeEventFile(events: readonly TfEvent[], wallTime: number): Buffer {
  const records = [frameRecord(encodeEvent({ wallTime, fileVersion: FILE_VERSION }))];
  for (const e of events) records.push(frameRecord(encodeEvent(e)));
  return Buffer.concat(records);
}

/**
 * The name TensorBoard looks for: `events.out.tfevents.<seconds>.<host>` (TensorBoard picks up any file whose name
 * contains `tfevents`). The host is reduced to characters safe in a file name.
 */
export function eventFileName(wallTimeSeconds: number, host: string): string {
  const safeHost = host.replace(/[^A-Za-z0-9._-]/g, '_') || 'localhost';
  return `events.out.tfevents.${Math.floor(wallTimeSeconds)}.${safeHost}`;
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

/** A minimal protobuf writer: the four wire types an Event needs. */
class ProtoWriter {
  private buf = Buffer.allocUnsafe(64);
  private len = 0;

  double(field: number, v: number): void {
    this.key(field, WIRE_FIXED64);
    this.reserve(8);
    this.buf.writeDoubleLE(v, this.len);
    this.len += 8;
  }

  float(field: number, v: number): void {
    this.key(field, WIRE_FIXED32);
    this.reserve(4);
    this.buf.writeFloatLE(v, this.len);
    this.len += 4;
  }

  /** A non-negative integer as a varint (int64 and uint64 encode the same for v >= 0). */
  uint(field: number, v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`protobuf varint: ${v} is not an integer >= 0`);
    this.key(field, WIRE_VARINT);
    this.varint(v);
  }

  string(field: number, s: string): void {
    this.bytes(field, Buffer.from(s, 'utf8'));
  }

  bytes(field: number, b: Uint8Array): void {
    this.key(field, WIRE_LEN);
    this.varint(b.length);
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  private key(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  private varint(v: number): void {
    this.reserve(10);
    // NOTE: arithmetic, not bit operators, which would truncate values above 2^31.
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.len++] = v;
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
}
