/**
 * The playground's run (playground/src/session.ts) in Node: the views' extra passes (decision-boundary grid,
 * per-time-step input gradients, activation histograms) leave the training numbers exactly as without them.
 */
import { describe, expect, it } from 'vitest';
import { Session } from '../playground/src/session.js';
import { LESSONS, toSets } from '../playground/src/state.js';

function lesson(id: string, extra: Record<string, string>): string[] {
  return toSets({ ...LESSONS.find((l) => l.id === id)!.state, ...extra });
}

function train(s: Session, between: () => void): void {
  while (!s.done) {
    s.run(10_000, 7);
    between();
  }
}

describe('playground session', () => {
  it('the per-time-step gradient of a vanilla RNN dies out towards the first step, and probing it changes nothing', () => {
    const sets = lesson('rnn', { 'train.maxSteps': '30' });
    const plain = new Session(sets);
    train(plain, () => {});
    const probed = new Session(sets);
    let g: Float64Array | null = null;
    train(probed, () => {
      g = probed.timeGrads();
    });
    expect(probed.losses).toEqual(plain.losses);
    const tg = g as unknown as Float64Array;
    expect(tg.length).toBe(60);
    expect(tg[0]!).toBeLessThan(tg[59]! * 1e-3);
    expect(plain.timeGrads()).not.toBeNull();
  });

  it('the decision boundary and the histograms change nothing; the verdict is the CLI diagnosis of the run', () => {
    const sets = lesson('vanishing', { 'model.depth': '6', 'train.maxSteps': '40' });
    const plain = new Session(sets);
    train(plain, () => {});
    const viewed = new Session(sets);
    let grid: Uint8Array | null = null;
    train(viewed, () => {
      grid = viewed.grid(16, -2, 2);
      viewed.wantHistograms = true;
    });
    expect(viewed.losses).toEqual(plain.losses);
    expect(viewed.gradHistory.length).toBe(40);
    expect(viewed.gradHistory[39]).toEqual(plain.gradHistory[39]);
    expect([...(grid as unknown as Uint8Array)].every((c) => c < 3)).toBe(true);
    expect(viewed.histograms.length).toBe(6);
    expect(viewed.histograms[0]!.counts.reduce((a, b) => a + b, 0)).toBe(32 * 32);
    expect(viewed.diagnosis?.verdict).toBe(plain.diagnosis?.verdict);
    expect(viewed.timeGrads()).toBeNull();
  });
});
