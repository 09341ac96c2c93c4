/**
 * The parts of distributed sweeps that need no server: how a queued trial becomes a table row, the `--status` text,
 * sweep ids and queue URLs (never printed with their password). The queue itself is tested on a real PostgreSQL in
 * sweep-queue.int.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { checkQueueUrl, newSweepId, type QueuedTrial, redactUrl } from './queue.js';
import { formatStatus, queuedRow, type SweepStatus } from './sweep-queue.js';

const trial = (over: Partial<QueuedTrial>): QueuedTrial => ({
  id: 1,
  sweep: 'sw-20261203-104512-3fa9c1',
  index: 0,
  params: { 'optim.lr': 0.01 },
  sets: ['optim.lr=0.01'],
  config: {},
  name: 'sweep optim.lr=0.01',
  state: 'queued',
  jobId: '00000000-0000-0000-0000-000000000000',
  worker: null,
  attempts: 0,
  run: null,
  result: null,
  error: null,
  bug: false,
  kind: 'sweep',
  spec: {},
  ...over,
});

describe('queued trials as rows', () => {
  it('a recorded trial is its result row; one still queued or running says where it is', () => {
    const result = {
      trial: 0,
      params: { 'optim.lr': 0.01 },
      status: 'finished',
      testAccuracy: 0.9,
      testLoss: 0.3,
      finalLoss: Number.NaN,
      verdict: 'healthy',
      seconds: 1.5,
      run: '20261203-104600-ab12',
    };
    expect(queuedRow(trial({ state: 'done', result }))).toEqual(result);
    expect(queuedRow(trial({ state: 'running', run: '20261203-104600-ab12' }))).toMatchObject({
      status: 'running',
      testAccuracy: null,
      run: '20261203-104600-ab12',
    });
    expect(queuedRow(trial({ state: 'failed', error: 'its worker vm:1 died, 4 attempts in all' }))).toMatchObject({
      status: 'failed',
      error: 'its worker vm:1 died, 4 attempts in all',
    });
  });

  it('--status prints the counts and a row per trial', () => {
    const s: SweepStatus = {
      sweep: {
        id: 'sw-20261203-104512-3fa9c1',
        kind: 'sweep',
        createdAt: '2026-12-03T10:45:12.000Z',
        trials: 2,
        counts: { queued: 0, running: 1, done: 1, failed: 0 },
      },
      trials: [
        {
          ...queuedRow(trial({})),
          status: 'finished',
          testAccuracy: 0.9123,
          finalLoss: 0.25,
          verdict: 'healthy',
          run: 'r1',
          state: 'done',
          attempts: 2,
          worker: 'vm:7',
        },
        {
          ...queuedRow(trial({ index: 1, params: { 'optim.lr': 0.1 } })),
          state: 'running',
          attempts: 1,
          worker: 'vm:8',
        },
      ],
    };
    const text = formatStatus(s).split('\n');
    expect(text[0]).toBe(
      'sweep sw-20261203-104512-3fa9c1 (sweep, queued 2026-12-03T10:45:12.000Z): 2 trials, 1 done, 0 failed, 1 running, 0 queued',
    );
    expect(text[1]).toMatch(/^trial\s+optim\.lr\s+state\s+attempts\s+test acc\s+final loss\s+verdict\s+run\s+worker$/);
    expect(text[2]).toMatch(/^0\s+0\.01\s+done\s+2\s+91\.23%\s+0\.2500\s+healthy\s+r1\s+vm:7$/);
    expect(text[3]).toMatch(/^1\s+0\.1\s+running\s+1\s+-\s+-\s+-\s+-\s+vm:8$/);
  });
});

describe('queue URLs and sweep ids', () => {
  it('a queue URL is shown without its password, and must be PostgreSQL', () => {
    expect(redactUrl('postgres://gg:secret@db:5432/runs')).toBe('postgres://gg:***@db:5432/runs');
    expect(redactUrl('postgres://gg@db/runs')).toBe('postgres://gg@db/runs');
    expect(() => checkQueueUrl('redis://db:6379')).toThrow(/give a PostgreSQL URL/);
    expect(() => checkQueueUrl('postgresql://db/runs')).not.toThrow();
  });

  it('sweep ids carry the UTC time and sort by it', () => {
    const id = newSweepId(Date.UTC(2026, 11, 3, 10, 45, 12));
    expect(id).toMatch(/^sw-20261203-104512-[0-9a-f]{6}$/);
    expect(newSweepId(Date.UTC(2026, 11, 3, 10, 45, 13)) > id).toBe(true);
  });
});
