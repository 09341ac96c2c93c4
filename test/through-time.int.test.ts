/**
 * Gradient flow through time end to end: a vanilla tanh RNN on the adding problem (T = 100), which the diagnosis used to
 * call healthy, reads `vanishing-through-time` in `train --json` (with the time steps concerned and the gradient
 * horizon) and in the terminal; `doctor --fix` credits a fix by its outcome.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main.js';

let out = '';
beforeEach(() => {
  out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    out += String(s);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
});
afterEach(() => vi.restoreAllMocks());

const rnn = ['data.name=adding', 'data.length=100', 'model.type=rnn', 'model.activation=tanh'].flatMap((s) => [
  '--set',
  s,
]);

interface TimeFinding {
  layer: string;
  length: number;
  horizon: number;
  steps: number[];
  recorded: { steps: number[]; norms: number[] };
}

describe('vanishing through time', () => {
  it('train --json: a tanh RNN on adding T = 100 vanishes through time, with the time steps concerned', async () => {
    expect(await main(['train', '--no-store', '--json', ...rnn, '--set', 'train.maxSteps=40'])).toBe(0);
    const r = JSON.parse(out);
    expect(r.diagnosis.verdict).toBe('vanishing-through-time');
    const f = r.diagnosis.findings[0];
    expect(f.layers).toEqual(['net.rnn']);
    const [t] = f.time as TimeFinding[];
    expect(t!.length).toBe(100);
    expect(t!.recorded.steps).toHaveLength(64);
    expect(t!.horizon).toBeLessThan(50);
    expect(t!.steps[0]).toBe(0);
    expect(r.diagnosis.time[0]).toMatchObject({ layer: 'net.rnn', sub: 'l0', length: 100 });
    expect(f.fixes.map((x: { set: string[] }) => x.set[0])).toContain('model.type=lstm');
  });

  it('doctor --fix: the report gives the horizon, and the LSTM trial is credited by its outcome', async () => {
    expect(await main(['doctor', '--fix', '--max-trials', '1', ...rnn])).toBe(0);
    expect(out).toContain('Verdict: vanishing-through-time');
    expect(out).toMatch(/Gradient horizon: \d+ of 100 steps in net\.rnn/);
    expect(out).toMatch(/an LSTM instead of a vanilla RNN +healthy .*✓ works/);
    expect(out).toContain('cures vanishing-through-time');
    expect(out).toContain('Recommended: an LSTM instead of a vanilla RNN: --set model.type=lstm');
  });

  it('doctor --json --fix: the trials carry their outcome, and a shorter sequence runs on its own data', async () => {
    expect(await main(['doctor', '--json', '--fix', '--max-trials', '3', ...rnn])).toBe(0);
    const r = JSON.parse(out);
    expect(r.verdict).toBe('vanishing-through-time');
    expect(r.time[0]).toMatchObject({ layer: 'net.rnn', length: 100 });
    const [original, ...trials] = r.trials as {
      label: string;
      set: string[];
      loss: number;
      works: boolean;
      outcome?: string;
    }[];
    expect(trials.map((t) => t.set[0])).toEqual(['model.type=lstm', 'init.weight=orthogonal', 'data.length=50']);
    expect(trials[0]!.works).toBe(true);
    for (const t of trials) expect(t.outcome).toMatch(/loss [\d.e-]+ against/);
    // before, every trial ran on the original's data set: the shorter sequence gave the original's loss exactly
    expect(trials[2]!.loss).not.toBe(original!.loss);
  });
});
