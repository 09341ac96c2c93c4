import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { STORE_KINDS, type TestStore, testStore } from '../../test/services/stores.js';
import { writeFileAtomic } from '../io/atomic.js';
import { exportRun, type RunExport, runDurationMs, stringifyJson } from './export.js';
import { RunStore } from './store.js';
import { TrackError } from './types.js';

let t: TestStore;
let dir: string;
let store: RunStore;
let id: string;

describe.each(STORE_KINDS)('exportRun on %s', (kind) => {
  beforeEach(async () => {
    t = await testStore(kind, 'gg-export-');
    dir = t.dir;
    store = RunStore.open(kind === 'sqlite' ? join(dir, 'store') : t.spec);
    id = store.createRun({ name: 'csv', config: { model: { type: 'mlp' }, note: 'a, "quoted"\nline' }, backend: 'js' });
    const layer = { gradMaxAbs: 2, weightNorm: 3, updateRatio: 0.001, actMean: -0.5, actStd: 1.5, nonFinite: 0 };
    store.logStep(id, 0, { 'train/loss': 2.5, lr: 0.001 }, [
      { name: 'layers.0', gradNorm: 0.25, ...layer, deadFrac: 0.125 },
      { name: 'layers,odd', gradNorm: Number.NaN, ...layer, satFrac: 0.5, nonFinite: 7 },
    ]);
    store.logStep(id, 1, { 'train/loss': Number.POSITIVE_INFINITY, lr: 0.001 });
    store.logStep(id, 2, { 'train/loss': Number.NaN, 'test/accuracy': 0.5 });
    store.logFinding(id, 2, {
      kind: 'non-finite-loss',
      layers: ['layers.0', 'layers,odd'],
      evidence: { loss: 'NaN', at: 2 },
      suggestion: 'lower the learning rate, or clip',
      severity: 'error',
    });
    store.finishRun(id, 'diverged', { metrics: { 'test/loss': Number.NaN }, verdict: 'diverged', durationMs: 50 });
  });
  afterEach(async () => {
    store.close();
    await t.drop();
  });

  describe('exportRun csv', () => {
    it('writes metrics per step, layer statistics and findings, with NaN, Infinity, empty cells and quoting', async () => {
      const out = join(dir, 'out');
      const result = await exportRun(store, id, { format: 'csv', out });
      expect(result).toEqual({
        id,
        format: 'csv',
        files: [join(out, `${id}-metrics.csv`), join(out, `${id}-layers.csv`), join(out, `${id}-findings.csv`)],
      });
      const times = store.getMetrics(id).times.map((t) => new Date(t).toISOString());
      expect(readFileSync(result.files[0]!, 'utf8')).toBe(
        [
          'step,time,train/loss,lr,test/accuracy',
          `0,${times[0]},2.5,0.001,`,
          `1,${times[1]},Infinity,0.001,`,
          `2,${times[2]},NaN,,0.5`,
          '',
        ].join('\n'),
      );
      expect(readFileSync(result.files[1]!, 'utf8')).toBe(
        [
          'step,layer,gradNorm,gradMaxAbs,weightNorm,updateRatio,actMean,actStd,deadFrac,satFrac,nonFinite',
          '0,layers.0,0.25,2,3,0.001,-0.5,1.5,0.125,,0',
          '0,"layers,odd",NaN,2,3,0.001,-0.5,1.5,,0.5,7',
          '',
        ].join('\n'),
      );
      expect(readFileSync(result.files[2]!, 'utf8')).toBe(
        [
          'step,kind,severity,layers,evidence,suggestion',
          '2,non-finite-loss,error,"layers.0;layers,odd","{""loss"":""NaN"",""at"":2}","lower the learning rate, or clip"',
          '',
        ].join('\n'),
      );
    });
  });

  describe('exportRun json', () => {
    it('writes everything in one file, non-finite numbers as strings', async () => {
      const out = join(dir, 'json');
      const result = await exportRun(store, 'csv', { format: 'json', out });
      expect(result.files).toEqual([join(out, `${id}.json`)]);
      const doc = JSON.parse(readFileSync(result.files[0]!, 'utf8')) as RunExport;
      expect(doc.format).toBe('gradguard-run');
      expect(doc.version).toBe(1);
      expect(doc.run).toMatchObject({
        id,
        name: 'csv',
        status: 'diverged',
        backend: 'js',
        durationMs: 50,
        lastStep: 2,
        config: { model: { type: 'mlp' }, note: 'a, "quoted"\nline' },
        summary: { metrics: { 'test/loss': 'NaN' }, verdict: 'diverged', durationMs: 50 },
      });
      expect(doc.run.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(doc.metrics.steps).toEqual([0, 1, 2]);
      expect(doc.metrics.series).toEqual({
        'train/loss': [2.5, 'Infinity', 'NaN'],
        lr: [0.001, 0.001, null],
        'test/accuracy': [null, null, 0.5],
      });
      expect(doc.layerStats).toHaveLength(2);
      expect(doc.layerStats[1]).toMatchObject({ step: 0, name: 'layers,odd', gradNorm: 'NaN', satFrac: 0.5 });
      expect(doc.findings[0]).toMatchObject({ step: 2, kind: 'non-finite-loss', evidence: { loss: 'NaN', at: 2 } });
    });
  });

  describe('exportRun errors and atomic writes', () => {
    it('refuses unknown formats, unknown runs and an output path that is a file', async () => {
      await expect(exportRun(store, id, { format: 'xml' as 'csv', out: dir })).rejects.toThrow(
        "unknown export format 'xml'; use one of csv, json, tensorboard",
      );
      await expect(exportRun(store, 'nope', { format: 'csv', out: dir })).rejects.toMatchObject({
        code: 'UNKNOWN_RUN',
      });
      const file = join(dir, 'file');
      writeFileSync(file, 'x');
      await expect(exportRun(store, id, { format: 'json', out: file })).rejects.toBeInstanceOf(TrackError);
      await expect(exportRun(store, id, { format: 'json', out: join(file, 'sub') })).rejects.toBeInstanceOf(TrackError);
    });

    it('leaves no temporary file, and never a half-written target, when a write fails', () => {
      const out = join(dir, 'atomic');
      mkdirSync(out);
      const target = join(out, 'a.txt');
      writeFileAtomic(target, 'first');
      writeFileAtomic(target, 'second');
      expect(readFileSync(target, 'utf8')).toBe('second');
      // The rename cannot replace a directory: the write fails, the temporary file is removed, the target untouched.
      const blocked = join(out, 'blocked');
      mkdirSync(blocked);
      writeFileSync(join(blocked, 'keep'), 'k');
      expect(() => writeFileAtomic(blocked, 'data')).toThrow();
      expect(readdirSync(out).sort()).toEqual(['a.txt', 'blocked']);
      expect(existsSync(join(blocked, 'keep'))).toBe(true);
    });

    it('serialises non-finite numbers as strings and computes durations', () => {
      expect(stringifyJson({ a: Number.NaN, b: [Number.NEGATIVE_INFINITY, 1], c: null })).toBe(
        '{"a":"NaN","b":["-Infinity",1],"c":null}',
      );
      const run = store.getRun(id);
      expect(runDurationMs(run)).toBe(50);
      expect(runDurationMs({ ...run, summary: null, finishedAt: run.createdAt + 70 })).toBe(70);
      expect(runDurationMs({ ...run, summary: null, finishedAt: null, status: 'running' }, run.createdAt + 9)).toBe(9);
    });
  });
});
