/**
 * The statistics of a convolution's ReLU output that a max pooling reads (Monitor: LayerAcc.pooled), taken in the
 * pooling's pass (maxPool2dSums) instead of a pass of their own: the same figures to the bit as the pass, and the pass
 * where no pooling comes (a graph that changes, an output released before another hook).
 */
import { describe, expect, it } from 'vitest';
import { expectNaNCounted, forwardStep, kernelCalls } from '../../test/monitored-steps.js';
import { ReLU } from '../nn/activation.js';
import { Sequential } from '../nn/container.js';
import { Conv2d, MaxPool2d } from '../nn/conv.js';
import { Module } from '../nn/module.js';
import { type Tensor, tidy } from '../tensor/index.js';
import { randn } from '../tensor/random.js';
import { Monitor } from './monitor.js';
import type { LayerStats } from './records.js';

/** How many times the pass over an output (`sumSquaresRows`) and the pooling with its sums run inside f. */
function calls(f: () => void): { passes: number; pooled: number } {
  const c = kernelCalls(['sumSquaresRows', 'maxPool2dSums'], f);
  return { passes: c.sumSquaresRows, pooled: c.maxPool2dSums };
}

/** The figures the monitor reports of a layer's activation. */
const figures = (l: LayerStats) => [l.name, l.actMean, l.actStd, l.deadFrac, l.nonFinite];

function model() {
  const conv0 = new Conv2d(2, 6, 3, { padding: 1, seed: 0 });
  const conv1 = new Conv2d(6, 4, 3, { seed: 1 });
  // channel 5 of conv0 dead (its bias far below anything its weights give), so the dead units are counted too
  conv0.bias!.data[5] = -100;
  // a last layer after the second pooling: its hook comes while the pooling's sums are there (with a pooling last,
  // they are released at the end of tidy() before the step's end reads them, and that ReLU's output is read in its
  // hook instead)
  const net = new Sequential(
    conv0,
    new ReLU(),
    new MaxPool2d(2),
    conv1,
    new ReLU(),
    new MaxPool2d(2),
    new Conv2d(4, 2, 1),
  );
  const x = tidy(() => randn([3, 2, 13, 12], { seed: 3 }).add(0.2));
  return { net, conv0, conv1, x };
}

describe('a convolution’s ReLU output’s statistics from the max pooling that reads it', () => {
  it('gives the figures the pass over the output gives, bit for bit, without the pass', () => {
    const { net, x } = model();
    const mon = new Monitor(net).attach();
    const step = (s: number) =>
      calls(() => {
        mon.beginStep(s);
        tidy(() => net.call(x));
        mon.endStep(0);
      });
    // the first step reads the three convolutions' own outputs and two ReLUs' outputs (the modules run one by one
    // while the monitor learns the model), and learns that a pooling reads each ReLU's; then the poolings take them,
    // and only the last convolution's own output is read
    expect(step(0)).toEqual({ passes: 5, pooled: 2 });
    expect(step(1)).toEqual({ passes: 1, pooled: 2 });
    expect(step(2)).toEqual({ passes: 1, pooled: 2 });
    const [r0, r1, r2] = mon.history;
    expect(r0!.layers.map(figures)).toEqual([
      ['0', expect.any(Number), expect.any(Number), expect.any(Number), 0],
      ['3', expect.any(Number), expect.any(Number), expect.any(Number), 0],
      ['6', expect.any(Number), expect.any(Number), undefined, 0],
    ]);
    expect(r0!.layers[0]!.actMean).toBeGreaterThan(0);
    expect(r0!.layers[0]!.deadFrac).toBeCloseTo(1 / 6, 12); // the one dead channel of six
    expect(r1!.layers.map(figures)).toEqual(r0!.layers.map(figures));
    expect(r2!.layers.map(figures)).toEqual(r0!.layers.map(figures));
  });

  it('counts a pooled output’s NaN values as the pass does', () => {
    const { net, x } = model();
    const step = forwardStep(new Monitor(net).attach(), net, x);
    step(0);
    expect(step(1).nonFinite).toBe(0);
    // one input value: NaN in the outputs around it, in every channel but the dead one's
    expectNaNCounted(step, 2, x, 40, () => (net.at(1) as ReLU).call((net.at(0) as Conv2d).call(x)));
  });

  it('reads the output where no pooling comes: another graph, an output released before another hook', () => {
    const conv = new Conv2d(2, 6, 3, { padding: 1, seed: 0 });
    const head = new Conv2d(6, 2, 1, { seed: 1 });
    let pooled = true;
    let last = false;
    class Net extends Module {
      readonly conv = this.registerModule('conv', conv);
      readonly relu = this.registerModule('relu', new ReLU());
      readonly pool = this.registerModule('pool', new MaxPool2d(2));
      readonly head = this.registerModule('head', head);
      forward(x: Tensor): Tensor {
        const y = this.relu.call(this.conv.call(x));
        if (last) return this.pool.call(y); // the pooling the model's last module: no hook after it
        return this.head.call(pooled ? this.pool.call(y) : y);
      }
    }
    const net = new Net();
    const x = tidy(() => randn([3, 2, 12, 12], { seed: 4 }));
    let mon = new Monitor(net).attach();
    const step = (s: number) =>
      calls(() => {
        mon.beginStep(s);
        tidy(() => {
          net.call(x);
        });
        mon.endStep(0);
      });
    const latest = () => figures(mon.latest()!.layers.find((l) => l.name === 'conv')!);
    expect(step(0)).toEqual({ passes: 3, pooled: 1 }); // learns that a pooling reads the ReLU's output
    const expected = latest();
    expect(step(1)).toEqual({ passes: 1, pooled: 1 }); // (head's own output)
    expect(latest()).toEqual(expected);
    pooled = false; // no pooling: read at the next hook instead
    expect(step(2)).toEqual({ passes: 2, pooled: 0 });
    expect(latest()).toEqual(expected);
    pooled = true; // and read in the ReLU's hook from then on
    expect(step(3)).toEqual({ passes: 2, pooled: 0 });
    expect(latest()).toEqual(expected);
    // a new monitor learns the pooling; then the pooling comes last, its sums released at the end of tidy() before
    // the step's end settles them: no figures that step, and read in the ReLU's hook from then on
    mon.detach();
    mon = new Monitor(net).attach();
    step(0);
    last = true;
    expect(step(1)).toEqual({ passes: 0, pooled: 1 });
    expect(mon.latest()!.layers[0]!.actMean).toBeNaN();
    expect(step(2)).toEqual({ passes: 1, pooled: 0 });
    expect(latest()).toEqual(expected);
  });
});
