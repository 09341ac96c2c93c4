/**
 * TensorBoard event files, read back by a reader written here from the format's description, independent of the
 * writer: its own crc32c (bitwise, Castagnoli polynomial), its own TFRecord framing and its own protobuf decoder.
 */

import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32c as awsCrc32c } from '@aws-crypto/crc32c';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exportRun } from './export.js';
import { RunStore } from './store.js';
import { encodeEvent, encodeEventFile, eventFileName, FILE_VERSION, frameRecord, maskedCrc32c } from './tfevents.js';

// ---- the independent reader -------------------------------------------------------------------------------------

/** crc32c, bit by bit: reflected polynomial 0x82F63B78. */
function refCrc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function refMask(crc: number): number {
  const rotated = ((crc >>> 15) | (crc << 17)) >>> 0;
  return Number((BigInt(rotated) + 0xa282ead8n) % 0x100000000n);
}

/** Splits a TFRecord file into record payloads, checking both checksums of every record. */
function readRecords(file: Uint8Array): Uint8Array[] {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const records: Uint8Array[] = [];
  let o = 0;
  while (o < file.length) {
    if (o + 12 > file.length) throw new Error(`truncated record header at ${o}`);
    const len = Number(view.getBigUint64(o, true));
    if (view.getUint32(o + 8, true) !== refMask(refCrc32c(file.subarray(o, o + 8)))) {
      throw new Error(`bad length crc at ${o}`);
    }
    const data = file.subarray(o + 12, o + 12 + len);
    if (data.length !== len || o + 16 + len > file.length) throw new Error(`truncated record at ${o}`);
    if (view.getUint32(o + 12 + len, true) !== refMask(refCrc32c(data))) throw new Error(`bad data crc at ${o}`);
    records.push(data);
    o += 16 + len;
  }
  return records;
}

type Field = { field: number; wire: number; value: bigint | Uint8Array | DataView };

/** A generic protobuf decoder: every field with its wire type; varints as bigint. */
function decodeProto(buf: Uint8Array): Field[] {
  const fields: Field[] = [];
  let o = 0;
  const varint = () => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[o++];
      if (b === undefined) throw new Error('truncated varint');
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return v;
      shift += 7n;
    }
  };
  while (o < buf.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    if (wire === 0) fields.push({ field, wire, value: varint() });
    else if (wire === 1 || wire === 5) {
      const n = wire === 1 ? 8 : 4;
      fields.push({ field, wire, value: new DataView(buf.buffer, buf.byteOffset + o, n) });
      o += n;
    } else if (wire === 2) {
      const n = Number(varint());
      fields.push({ field, wire, value: buf.subarray(o, o + n) });
      o += n;
    } else throw new Error(`unexpected wire type ${wire}`);
  }
  if (o !== buf.length) throw new Error('trailing bytes');
  return fields;
}

interface ReadEvent {
  wallTime?: number;
  step?: bigint;
  fileVersion?: string;
  scalars?: Record<string, number>;
}

/** Event { wall_time = 1 (double); step = 2 (int64); file_version = 3; summary = 5 { value = 1 { tag = 1; simple_value = 2 (float) } } } */
function readEvent(data: Uint8Array): ReadEvent {
  const e: ReadEvent = {};
  const text = (v: Field['value']) => new TextDecoder().decode(v as Uint8Array);
  for (const f of decodeProto(data)) {
    if (f.field === 1 && f.wire === 1) e.wallTime = (f.value as DataView).getFloat64(0, true);
    else if (f.field === 2 && f.wire === 0) e.step = f.value as bigint;
    else if (f.field === 3 && f.wire === 2) e.fileVersion = text(f.value);
    else if (f.field === 5 && f.wire === 2) {
      e.scalars = {};
      for (const v of decodeProto(f.value as Uint8Array)) {
        expect(v.field).toBe(1);
        let tag = '';
        let value = Number.NaN;
        for (const g of decodeProto(v.value as Uint8Array)) {
          if (g.field === 1 && g.wire === 2) tag = text(g.value);
          else if (g.field === 2 && g.wire === 5) value = (g.value as DataView).getFloat32(0, true);
          else throw new Error(`unexpected Summary.Value field ${g.field}`);
        }
        e.scalars[tag] = value;
      }
    } else throw new Error(`unexpected Event field ${f.field} (wire ${f.wire})`);
  }
  return e;
}

function readEventFile(file: Uint8Array): ReadEvent[] {
  return readRecords(file).map(readEvent);
}

// ---- tests -----------------------------------------------------------------------------------------------------

describe('crc32c and TFRecord framing', () => {
  it('matches the crc32c test vectors (RFC 3720 B.4) with both implementations', () => {
    const vectors: [Uint8Array, number][] = [
      [new TextEncoder().encode('123456789'), 0xe3069283],
      [new Uint8Array(32), 0x8a9136aa],
      [new Uint8Array(32).fill(0xff), 0x62a8ab43],
      [Uint8Array.from({ length: 32 }, (_, i) => i), 0x46dd794e],
      [new Uint8Array(0), 0],
    ];
    for (const [data, crc] of vectors) {
      expect(refCrc32c(data)).toBe(crc);
      expect(awsCrc32c(data)).toBe(crc);
      expect(maskedCrc32c(data)).toBe(refMask(crc));
    }
    // The mask is a rotation plus a constant: for crc32c('123456789') = 0xE3069283, ((c>>>15)|(c<<17)) = 0x2507C60D.
    expect(maskedCrc32c(new TextEncoder().encode('123456789'))).toBe((0x2507c60d + 0xa282ead8) >>> 0);
  });

  it('frames a record as length, masked crc of the length, data, masked crc of the data', () => {
    const data = new TextEncoder().encode('hello, tensorboard');
    const rec = frameRecord(data);
    expect(rec.length).toBe(data.length + 16);
    expect(rec.readBigUInt64LE(0)).toBe(BigInt(data.length));
    expect(rec.readUInt32LE(8)).toBe(refMask(refCrc32c(rec.subarray(0, 8))));
    expect(Buffer.from(rec.subarray(12, 12 + data.length)).toString()).toBe('hello, tensorboard');
    expect(rec.readUInt32LE(12 + data.length)).toBe(refMask(refCrc32c(data)));
    expect(readRecords(rec).map((r) => [...r])).toEqual([[...data]]);
  });

  it('has a reader that notices a flipped bit or a truncated file', () => {
    const file = encodeEventFile([{ wallTime: 1, step: 1, scalars: [{ tag: 'a', value: 1 }] }], 1);
    expect(readEventFile(file)).toHaveLength(2);
    for (const at of [3, 9, 20, file.length - 2]) {
      const bad = Buffer.from(file);
      bad[at]! ^= 0x10;
      expect(() => readRecords(bad)).toThrow(/crc|truncated/);
    }
    expect(() => readRecords(file.subarray(0, file.length - 1))).toThrow(/truncated/);
  });
});

describe('Event protobuf', () => {
  it('encodes wall_time, step, file_version and scalar summaries', () => {
    const version = readEvent(encodeEvent({ wallTime: 1764157512.25, fileVersion: FILE_VERSION }));
    expect(version).toEqual({ wallTime: 1764157512.25, fileVersion: 'brain.Event:2' });

    const scalars = [
      { tag: 'train/loss', value: 0.1 },
      { tag: 'grad_norm/layers.0', value: Number.NaN },
      { tag: 'lr', value: Number.POSITIVE_INFINITY },
      { tag: 'ünïcode/tag', value: -3 },
    ];
    const e = readEvent(encodeEvent({ wallTime: 2.5, step: 2 ** 40 + 5, scalars }));
    expect(e.wallTime).toBe(2.5);
    expect(e.step).toBe(2n ** 40n + 5n); // a varint longer than 32 bits
    expect(e.scalars).toEqual({
      'train/loss': Math.fround(0.1),
      'grad_norm/layers.0': Number.NaN,
      lr: Number.POSITIVE_INFINITY,
      'ünïcode/tag': -3,
    });
  });

  it('writes the known bytes of a small event', () => {
    // wall_time=1.0: 09 | 00 00 00 00 00 00 f0 3f; step=300: 10 | ac 02;
    // summary: 2a 0a | value: 0a 08 | tag "x": 0a 01 78 | simple_value 1.0f: 15 00 00 80 3f
    const bytes = encodeEvent({ wallTime: 1, step: 300, scalars: [{ tag: 'x', value: 1 }] });
    expect(Buffer.from(bytes).toString('hex')).toBe('09000000000000f03f10ac022a0a0a080a0178150000803f');
  });

  it('names files as TensorBoard expects', () => {
    expect(eventFileName(1764157512.9, 'my host/1')).toBe('events.out.tfevents.1764157512.my_host_1');
  });
});

describe('exportRun tensorboard', () => {
  let dir: string;
  let store: RunStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'gg-tb-'));
    store = RunStore.open(join(dir, 'store'));
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes one readable event file per run: file version first, then one event per step', async () => {
    const id = store.createRun({ name: 'tb', config: {}, backend: 'js' });
    const layer = (name: string, gradNorm: number) => ({
      name,
      gradNorm,
      gradMaxAbs: 1,
      weightNorm: 1,
      updateRatio: 0,
      actMean: 0,
      actStd: 1,
      nonFinite: 0,
    });
    store.logStep(id, 0, { 'train/loss': 2.5, lr: 0.001 }, [layer('layers.0', 3), layer('layers.1', 4)]);
    store.logStep(id, 1, { 'train/loss': Number.NaN, lr: 0.001 });
    store.logStep(id, 2, { 'train/loss': 1.5, 'test/accuracy': 0.875 }, [layer('layers.0', 0.5), layer('layers.1', 0)]);
    const out = join(dir, 'out');
    // A file from an earlier export of the same run is replaced, not merged.
    const old = join(out, id, 'events.out.tfevents.1.oldhost');
    const result = await exportRun(store, id.slice(0, 18), { format: 'tensorboard', out });
    writeFileSync(old, 'stale');
    const again = await exportRun(store, id, { format: 'tensorboard', out });
    expect(again.files).toEqual(result.files);
    expect(readdirSync(join(out, id))).toEqual([result.files[0]!.split('/').pop()]);
    expect(result.files[0]).toMatch(new RegExp(`/${id}/events\\.out\\.tfevents\\.\\d+\\.[\\w.-]+$`));

    const events = readEventFile(readFileSync(result.files[0]!));
    const run = store.getRun(id);
    expect(events[0]).toEqual({ wallTime: run.createdAt / 1000, fileVersion: 'brain.Event:2' });
    const times = store.getMetrics(id).times;
    expect(events.slice(1)).toEqual([
      {
        wallTime: times[0]! / 1000,
        step: 0n,
        scalars: {
          'train/loss': 2.5,
          lr: Math.fround(0.001),
          'grad_norm/layers.0': 3,
          'grad_norm/layers.1': 4,
          'grad_norm/global': 5,
        },
      },
      { wallTime: times[1]! / 1000, step: 1n, scalars: { 'train/loss': Number.NaN, lr: Math.fround(0.001) } },
      {
        wallTime: times[2]! / 1000,
        step: 2n,
        scalars: {
          'train/loss': 1.5,
          'test/accuracy': 0.875,
          'grad_norm/layers.0': 0.5,
          'grad_norm/layers.1': 0,
          'grad_norm/global': 0.5,
        },
      },
    ]);
  });
});
