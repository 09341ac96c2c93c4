/**
 * Our side of the bench's protocol (bench/ours-worker.ts), as bench/bench.ts drives it: a row set up, its plain steps
 * timed in a block of their own after a lead-in of untimed steps, and the alternating plain/monitored block. What is
 * checked is the shape of the replies and that a lead-in ran (no timing is asserted).
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Worker } from '../bench/machine.js';
import { oursWorker } from '../bench/processes.js';
import { ROWS } from '../bench/rows.js';

interface Block {
  times: number[];
  cpu: number[];
  pool: { all: number; alone: number; crowded: number };
  lead: number;
}

describe("bench: our worker's blocks", () => {
  const spec = ROWS.find((r) => r.id === 'mlp')!;
  let worker: Worker | null = null;
  afterAll(() => worker?.close());

  it('times a plain block after its lead-in, and the alternating block after both copies led in', async () => {
    worker = oursWorker(1, 'js');
    await worker.call({ op: 'setup', row: spec.id, spec, warm: 1, warm_ms: 0, max_ms: 60_000 });
    const bare = await worker.call<Block>({ op: 'run', row: spec.id, steps: 3, max_ms: 60_000, lead_ms: 0 });
    expect(bare.lead).toBe(0);
    expect(bare.times).toHaveLength(3);
    expect(bare.cpu).toHaveLength(3);
    for (const t of [...bare.times, ...bare.cpu]) expect(t).toBeGreaterThan(0);
    expect(bare.pool).toEqual({ all: expect.any(Number), alone: expect.any(Number), crowded: expect.any(Number) });
    const led = await worker.call<Block>({ op: 'run', row: spec.id, steps: 2, max_ms: 60_000, lead_ms: 1 });
    expect(led.lead).toBeGreaterThanOrEqual(1);
    expect(led.times).toHaveLength(2);
    const pair = await worker.call<{ plain: number[]; monitored: number[]; cpu: number[]; lead: number }>({
      op: 'pair',
      row: spec.id,
      steps: 2,
      max_ms: 60_000,
      lead_ms: 1,
    });
    expect(pair.lead).toBeGreaterThanOrEqual(1);
    expect(pair.plain).toHaveLength(2);
    expect(pair.monitored).toHaveLength(2);
    expect(pair.cpu).toHaveLength(2);
    await expect(worker.call({ op: 'run', row: 'cnn', steps: 1 })).rejects.toThrow(/not set up/);
  }, 120_000);

  it("sets up the MLP on MNIST digits: the batch PyTorch's side reads, the CLI's standardized digits", async () => {
    const { mnistBatch } = await import('../bench/steps.js');
    const { x, y } = mnistBatch(128);
    expect(x).toHaveLength(128 * 784);
    expect(y).toHaveLength(128);
    for (const v of y) expect(Number.isInteger(v) && v >= 0 && v < 10).toBe(true);
    // standardized over the training pixels (mean ~0.13, std ~0.31): a blank pixel is ~-0.42, none is 0
    expect(Math.min(...x)).toBeCloseTo(-0.4247, 3);
    expect(x.some((v) => v === 0)).toBe(false);
    const mnist = ROWS.find((r) => r.id === 'mlp-mnist')!;
    worker ??= oursWorker(1, 'js');
    await worker.call({ op: 'setup', row: mnist.id, spec: mnist, warm: 1, warm_ms: 0, max_ms: 60_000 });
    const block = await worker.call<Block>({ op: 'run', row: mnist.id, steps: 2, max_ms: 60_000, lead_ms: 0 });
    expect(block.times).toHaveLength(2);
  }, 120_000);
});
