/**
 * TensorBoard histogram summaries: the writer's bytes for a fixed set of events are those that TensorBoard's own
 * protos decoded (test/fixtures/tb-histograms: make_events.ts wrote events.tfevents, make_fixture.py decoded it with
 * protoc-compiled TensorBoard protos into decoded.json), and what they decoded to is what was meant.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURE_WALL_TIME, fixtureEvents } from '../../test/fixtures/tb-histograms/make_events.js';
import { histogram } from '../monitor/histogram.js';
import { exportRun } from './export.js';
import { RunStore } from './store.js';
import { withHistograms } from './tb-histograms.js';
import { encodeEventFile } from './tfevents.js';

const FIXTURES = join(import.meta.dirname, '../../test/fixtures/tb-histograms');

interface DecodedHisto {
  min?: number;
  max?: number;
  num?: number;
  sum?: number;
  sum_squares?: number;
  bucket_limit?: number[];
  bucket?: number[];
}
interface DecodedEvent {
  wall_time?: number;
  step?: string;
  file_version?: string;
  summary?: { value: { tag: string; simple_value?: number; histo?: DecodedHisto }[] };
}

describe('TensorBoard histogram summaries', () => {
  it('are written as the bytes that TensorBoard’s protos decoded', () => {
    const bytes = encodeEventFile(fixtureEvents(), FIXTURE_WALL_TIME);
    expect(bytes.equals(readFileSync(join(FIXTURES, 'events.tfevents')))).toBe(true);
  });

  it('decode, with TensorBoard’s protos, to the histograms the events carry (proto3 omits zeros)', () => {
    const decoded = JSON.parse(readFileSync(join(FIXTURES, 'decoded.json'), 'utf8')) as DecodedEvent[];
    expect(decoded[0]!.file_version).toBe('brain.Event:2');
    const events = fixtureEvents();
    expect(decoded.slice(1).map((e) => Number(e.step ?? 0))).toEqual(events.map((e) => e.step));
    events.forEach((e, i) => {
      const values = decoded[i + 1]!.summary!.value;
      const histos = values.filter((v) => v.histo);
      expect(histos.map((v) => v.tag)).toEqual((e.histograms ?? []).map((h) => h.tag));
      (e.histograms ?? []).forEach((h, j) => {
        const d = histos[j]!.histo!;
        expect([d.min ?? 0, d.max ?? 0, d.num ?? 0, d.sum ?? 0, d.sum_squares ?? 0]).toEqual([
          h.min,
          h.max,
          h.num,
          h.sum,
          h.sumSquares,
        ]);
        expect(d.bucket_limit).toEqual(h.bucketLimit);
        expect(d.bucket).toEqual(h.bucket);
      });
    });
    // the gradient at step 0: [-0.5, 0, 0.25, 1, NaN] in 4 buckets; NaN is not counted
    expect(decoded[1]!.summary!.value[1]).toEqual({
      tag: 'grad/layers.0',
      histo: {
        min: -0.5,
        max: 1,
        num: 4,
        sum: 0.75,
        sum_squares: 1.3125,
        bucket_limit: [-0.125, 0.25, 0.625, 1],
        bucket: [1, 1, 1, 1],
      },
    });
  });

  it('join the scalar event of their step, or get an event of their own; empty histograms are left out', () => {
    const rows = [
      { step: 5, layer: 'a', kind: 'grad' as const, hist: histogram([[1]], 2) },
      { step: 9, layer: 'a', kind: 'act' as const, hist: histogram([[Number.NaN]], 2) },
      { step: 2, layer: 'a', kind: 'weight' as const, hist: histogram([[1, 2]], 2) },
    ];
    const out = withHistograms([{ step: 5, wallTime: 7, scalars: [{ tag: 'loss', value: 1 }] }], rows, 3000);
    expect(out.map((e) => [e.step, e.wallTime, e.scalars?.length ?? 0, e.histograms?.map((h) => h.tag)])).toEqual([
      [2, 3, 0, ['weight/a']],
      [5, 7, 1, ['grad/a']],
    ]);
  });

  it('are in the file `gradguard export --format tensorboard` writes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gg-tbh-'));
    try {
      const store = RunStore.open(join(dir, 'store'));
      const id = store.createRun({ config: {}, backend: 'js' });
      store.logStep(id, 0, { loss: 1 });
      store.logHistograms(id, 0, [{ name: 'layers.0', grad: histogram([[1, 2, 3]], 3) }]);
      const result = await exportRun(store, id, { format: 'tensorboard', out: join(dir, 'out') });
      store.close();
      const file = readFileSync(result.files[0]!);
      expect(file.includes(Buffer.from('grad/layers.0'))).toBe(true);
      expect(readdirSync(join(dir, 'out', id))).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
