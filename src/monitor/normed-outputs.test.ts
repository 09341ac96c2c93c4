/**
 * The moments of a layer's output that a BatchNorm normalises (Monitor: LayerAcc.normed), taken from the BatchNorm's
 * batch statistics instead of a pass over the output: the same figures as the pass, and the pass where no BatchNorm
 * in training comes (evaluation, a graph that changes, an output released before another hook).
 */
import { describe, expect, it } from 'vitest';
import { expectNaNCounted, forwardStep, kernelCalls } from '../../test/monitored-steps.js';
import { ReLU } from '../nn/activation.js';
import { Sequential } from '../nn/container.js';
import { Conv2d } from '../nn/conv.js';
import { Module } from '../nn/module.js';
import { BatchNorm2d } from '../nn/norm.js';
import { type Tensor, tidy } from '../tensor/index.js';
import { randn } from '../tensor/random.js';
import { Monitor } from './monitor.js';

/** Mean and (population) standard deviation of a tensor's values, in float64. */
function moments(t: Tensor): [number, number] {
  const v = t.toArray();
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  return [mean, Math.sqrt(v.reduce((a, b) => a + (b - mean) * (b - mean), 0) / v.length)];
}

/** How many times the backend's `sumSquaresRows` (the pass over an output) runs inside f. */
const passes = (f: () => void) => kernelCalls(['sumSquaresRows'], f).sumSquaresRows;

function model() {
  const conv0 = new Conv2d(3, 8, 3, { padding: 1, seed: 0 });
  const conv1 = new Conv2d(8, 4, 3, { seed: 1 });
  // conv0 → BatchNorm + ReLU (fused), conv1 → BatchNorm (its own output the last one)
  const bn0 = new BatchNorm2d(8);
  const net = new Sequential(conv0, bn0, new ReLU(), conv1, new BatchNorm2d(4));
  // an offset, so that the outputs' means are far from 0
  const x = tidy(() => randn([4, 3, 10, 10], { seed: 3 }).add(0.7));
  return { net, conv0, bn0, conv1, x };
}

describe('a normalised output’s moments from the BatchNorm’s batch statistics', () => {
  it('gives the figures the pass over the output gives, without the pass', () => {
    const { net, conv0, bn0, conv1, x } = model();
    const mon = new Monitor(net).attach();
    const step = (s: number) =>
      passes(() => {
        mon.beginStep(s);
        tidy(() => net.call(x));
        mon.endStep(0);
      });
    const first = step(0);
    const second = step(1);
    const third = step(2);
    // the first step reads all five outputs (the modules run one by one while the monitor learns the model); then
    // the ReLU's and the last BatchNorm's only: the convolutions' moments come from the BatchNorms
    expect(first).toBe(5);
    expect(second).toBe(2);
    expect(third).toBe(2);
    const [m0, s0] = tidy(() => moments(conv0.call(x)));
    const [m1, s1] = tidy(() => moments(conv1.call(bn0.call(conv0.call(x)).relu()))); // bn0 in training: batch statistics
    expect(Math.abs(m0)).toBeGreaterThan(0.05);
    for (const rec of mon.history) {
      const [l0, , l1] = rec.layers;
      expect(l0!.name).toBe('0');
      expect(l1!.name).toBe('3');
      expect(l0!.actMean).toBeCloseTo(m0, 5);
      expect(l0!.actStd).toBeCloseTo(s0, 5);
      expect(l1!.actMean).toBeCloseTo(m1, 5);
      expect(l1!.actStd).toBeCloseTo(s1, 5);
      expect(l0!.nonFinite).toBe(0);
    }
  });

  it('counts a normalised output’s NaN values where its batch statistics are not finite', () => {
    const { conv0, x } = model();
    const net = new Sequential(conv0, new BatchNorm2d(8));
    const step = forwardStep(new Monitor(net).attach(), net, x);
    step(0);
    expect(step(1).nonFinite).toBe(0);
    // one input value: NaN in every channel's outputs around it
    expectNaNCounted(step, 2, x, 7, () => conv0.call(x));
  });

  it('reads the output where no BatchNorm in training comes: evaluation, another graph, an output released', () => {
    const { conv0, x } = model();
    const bn = new BatchNorm2d(8);
    let withNorm = true;
    class Net extends Module {
      readonly conv = this.registerModule('conv', conv0);
      readonly bn = this.registerModule('bn', bn);
      forward(x: Tensor): Tensor {
        const y = this.conv.call(x);
        return withNorm ? this.bn.call(y) : y;
      }
    }
    const net = new Net();
    const mon = new Monitor(net).attach();
    const [m0, s0] = tidy(() => moments(conv0.call(x)));
    const check = () => {
      const l = mon.latest()!.layers.find((l) => l.name === 'conv')!;
      expect(l.actMean).toBeCloseTo(m0, 5);
      expect(l.actStd).toBeCloseTo(s0, 5);
    };
    const step = (s: number, inTidy: boolean) => {
      mon.beginStep(s);
      if (inTidy)
        tidy(() => {
          net.call(x);
        });
      else net.call(x);
      mon.endStep(0);
    };
    step(0, true); // learns that a BatchNorm normalises conv's output
    check();
    net.eval(); // the running statistics normalise: no batch statistics to take
    step(1, true);
    check();
    net.train();
    withNorm = false; // conv's output is the model's: no hook after it, read at the step's end
    step(2, false);
    check();
    step(3, true); // released at the end of tidy() before anything read it: no figures this step
    expect(mon.latest()!.layers.find((l) => l.name === 'conv')!.actMean).toBeNaN();
    step(4, true); // and from then on read in the layer's own hook
    check();
    withNorm = true;
    step(5, true);
    check();
  });
});
