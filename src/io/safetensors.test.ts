/**
 * safetensors both ways with PyTorch: a file written by the fixture script (F32 plus I64, F16, BF16, F64, I32, U8)
 * loads here, and our file (scripts/fixtures/gg_save_model.ts) loaded in PyTorch with load_state_dict(strict=True)
 * gave outputs we reproduce. Plus atomic saving and the validation errors.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildRoundTripModel } from '../../scripts/fixtures/roundTripModel.js';
import { FIXTURES_DIR, maxRelError, remedies } from '../../test/remedies.js';
import { Sequential } from '../nn/container.js';
import { Linear } from '../nn/linear.js';
import { BatchNorm1d } from '../nn/norm.js';
import { tensor } from '../tensor/tensor.js';
import {
  loadSafetensors,
  loadSafetensorsMetadata,
  parseSafetensors,
  SafetensorsError,
  saveSafetensors,
  serializeSafetensors,
} from './safetensors.js';

const dir = mkdtempSync(join(tmpdir(), 'gg-safetensors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a file saved by PyTorch loads here', () => {
  const fx = remedies.safetensors.torchSaved;
  const path = join(FIXTURES_DIR, fx.file);
  it('every dtype converts to the same float32 values', () => {
    const dict = loadSafetensors(path);
    expect(Object.keys(dict).sort()).toEqual(Object.keys(fx.tensors).sort());
    for (const [k, e] of Object.entries(fx.tensors as Record<string, { shape: number[]; data: number[] }>)) {
      expect(dict[k]!.shape, k).toEqual(e.shape);
      expect(maxRelError(dict[k]!.data, Float32Array.from(e.data), 1e-30), k).toBe(0);
    }
    expect(loadSafetensorsMetadata(path)).toEqual(fx.metadata);
  });
  it('loads into the same architecture through loadStateDict (int64 num_batches_tracked included)', () => {
    const dict = loadSafetensors(path);
    const model = new Sequential(new Linear(4, 3, { seed: 0 }), new BatchNorm1d(3));
    const sd = Object.fromEntries(fx.stateDictKeys.map((k: string) => [k, dict[k]!]));
    model.loadStateDict(sd);
    expect(model.get('1.num_batches_tracked').item()).toBe(2);
    expect(Array.from(model.get('0.weight').data)).toEqual(Array.from(dict['0.weight']!.data));
  });
});

describe('a file saved here loads in PyTorch', () => {
  const fx = remedies.safetensors.gradguardSaved;
  it('the committed file is what serializeSafetensors writes today (a stable format)', () => {
    const bytes = serializeSafetensors(buildRoundTripModel().stateDict(), { format: 'pt', producer: 'gradguard' });
    expect(Buffer.from(bytes).equals(readFileSync(join(FIXTURES_DIR, fx.file)))).toBe(true);
  });
  it('PyTorch accepted every key and computed the outputs we compute from the same file', () => {
    const model = buildRoundTripModel();
    model.loadStateDict(loadSafetensors(join(FIXTURES_DIR, fx.file)));
    model.eval();
    expect(Object.keys(model.stateDict()).sort()).toEqual(fx.keys);
    expect(fx.metadata).toEqual({ format: 'pt', producer: 'gradguard' });
    const lin = (n: number, shape: number[]) =>
      tensor(
        Array.from({ length: n }, (_, i) => -1 + (2 * i) / (n - 1)),
        shape,
      );
    expect(maxRelError(model.mlp.call(lin(8, [2, 4])), fx.mlp)).toBeLessThan(1e-5);
    const { output, h } = model.lstm.call(lin(18, [2, 3, 3]));
    expect(maxRelError(output, fx.lstm)).toBeLessThan(1e-5);
    expect(maxRelError(h, fx.lstmH)).toBeLessThan(1e-5);
    expect(maxRelError(model.conv.call(lin(64, [2, 2, 4, 4])), fx.conv)).toBeLessThan(1e-5);
  });
});

describe('saveSafetensors', () => {
  it('round-trips values, shapes (scalars too) and metadata', () => {
    const path = join(dir, 'a.safetensors');
    const t = { w: tensor([1, -2.5, 3e-8, 1e30], [2, 2]), s: tensor(7, []), e: tensor([], [0, 3]) };
    saveSafetensors(path, t, { step: '12' });
    const back = loadSafetensors(path);
    expect(back.w!.shape).toEqual([2, 2]);
    expect(back.w!.toArray()).toEqual(t.w.toArray());
    expect(back.s!.shape).toEqual([]);
    expect(back.s!.item()).toBe(7);
    expect(back.e!.shape).toEqual([0, 3]);
    expect(loadSafetensorsMetadata(path)).toEqual({ step: '12' });
    // the header is padded to 8 bytes and the temporary file is gone
    const bytes = readFileSync(path);
    expect(Number(bytes.readBigUInt64LE(0)) % 8).toBe(0);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
  });
  it('replaces an existing file whole, and leaves it untouched when writing fails', () => {
    const path = join(dir, 'b.safetensors');
    saveSafetensors(path, { a: tensor([1]) });
    saveSafetensors(path, { b: tensor([2, 3]) });
    expect(Object.keys(loadSafetensors(path))).toEqual(['b']);
    // @ts-expect-error a non-string metadata value on purpose
    expect(() => saveSafetensors(path, { c: tensor([4]) }, { step: 3 })).toThrow(
      /metadata values must be strings.*'step'/,
    );
    expect(Object.keys(loadSafetensors(path))).toEqual(['b']);
    expect(() => saveSafetensors(join(dir, 'missing-dir', 'x.safetensors'), { a: tensor([1]) })).toThrow();
    expect(existsSync(join(dir, 'missing-dir'))).toBe(false);
  });
});

describe('malformed files fail with a clear error', () => {
  const good = serializeSafetensors({ a: tensor([1, 2, 3]) });
  const header = (h: object, data = new Uint8Array(12)) => {
    const json = new TextEncoder().encode(JSON.stringify(h));
    const out = new Uint8Array(8 + json.length + data.length);
    new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
    out.set(json, 8);
    out.set(data, 8 + json.length);
    return out;
  };
  it('short or truncated', () => {
    expect(() => parseSafetensors(new Uint8Array(3))).toThrow(/8-byte header length/);
    const bad = good.slice();
    new DataView(bad.buffer).setBigUint64(0, 10_000n, true);
    expect(() => parseSafetensors(bad)).toThrow(/header length 10000 is beyond the end/);
    expect(() => parseSafetensors(good.subarray(0, good.length - 4))).toThrow(/beyond the 8 bytes of data/);
  });
  it('bad JSON, unknown dtype, wrong sizes, holes', () => {
    const notJson = good.slice();
    notJson[8] = 0x7b + 1;
    expect(() => parseSafetensors(notJson)).toThrow(/not valid UTF-8 JSON/);
    expect(() => parseSafetensors(header({ a: { dtype: 'F8_E4M3', shape: [12], data_offsets: [0, 12] } }))).toThrow(
      /dtype "F8_E4M3", which gradguard cannot read; supported: BOOL/,
    );
    expect(() => parseSafetensors(header({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 12] } }))).toThrow(
      /spans 12 bytes but shape \[2\] of F32 needs 8/,
    );
    expect(() => parseSafetensors(header({ a: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }))).toThrow(
      /starts at byte 4.*hole/,
    );
    expect(() => parseSafetensors(header({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }))).toThrow(
      /cover 4 of the 12 bytes/,
    );
    expect(() => parseSafetensors(header({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }))).toThrow(
      /non-negative integers/,
    );
  });
  it('loadSafetensors names the file', () => {
    const path = join(dir, 'bad.safetensors');
    writeFileSync(path, new Uint8Array(4));
    expect(() => loadSafetensors(path)).toThrow(SafetensorsError);
    expect(() => loadSafetensors(path)).toThrow(new RegExp(`${path}: parseSafetensors`));
  });
});
