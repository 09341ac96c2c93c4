/**
 * Gradient flow through time: on a monitored step, the norm of the gradient reaching each recurrent layer's hidden
 * state at each time step, ‖∂L/∂h_t‖, recorded by the backward through time itself (tensor/ops/recurrent.ts calls a
 * `TimeTap` with ‖dh‖² of the steps the tap wants: one reduction per sampled step, nothing on other steps), and the
 * measures a person reads from it: the gradient horizon and the ratio of the first step's norm to the last's.
 *
 * Bengio, Simard & Frasconi, "Learning long-term dependencies with gradient descent is difficult", IEEE TNN 1994;
 * Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent neural networks", ICML 2013.
 */
import type { AnyModule } from '../nn/module.js';
import type { TimeTap } from '../tensor/ops/recurrent.js';

/** Time steps recorded at most per layer and step: longer sequences are sampled evenly, first and last included. */
export const TIME_SAMPLES = 64;

/**
 * The gradient horizon counts the steps back from the last over which ‖∂L/∂h_t‖ stays at or above this fraction of
 * its value at the last step.
 */
export const HORIZON_FRACTION = 1e-2;

/** One recurrent layer's (and direction's) ‖∂L/∂h_t‖ on one monitored step. */
export interface TimeFlow {
  /** The recurrent module's path (`rnn`, `layers.0`). */
  layer: string;
  /** Which stacked layer and direction of it, in PyTorch's suffixes: `l0`, `l1`, `l0_reverse`. */
  sub: string;
  /** The sequence length T. */
  length: number;
  /** The recorded time steps, ascending (every step up to `TIME_SAMPLES`, else an even sample with 0 and T − 1). */
  steps: number[];
  /** ‖∂L/∂h_t‖ at those steps (NaN where not finite). */
  norms: number[];
}

/** What a person reads from one `TimeFlow`. */
export interface TimeFlowSummary {
  /**
   * Steps back from the last (counting it) over which the norm stays ≥ `HORIZON_FRACTION` x the last step's: T when
   * the gradient reaches the first step undiminished by that much, 1 when it falls below at once; NaN when the last
   * step's norm is not finite or is 0.
   */
  horizon: number;
  /** ‖∂L/∂h_0‖ / ‖∂L/∂h_{T−1}‖: far below 1 vanishes through time, far above explodes. */
  firstLast: number;
  /** The largest norm over the smallest (finite, > 0), across the recorded steps. */
  spread: number;
}

/** The recorded time steps for a sequence of length T. */
export function sampledSteps(T: number, max = TIME_SAMPLES): number[] {
  if (T <= max) return Array.from({ length: T }, (_, i) => i);
  const out = new Set<number>();
  for (let i = 0; i < max; i++) out.add(Math.round((i * (T - 1)) / (max - 1)));
  return [...out].sort((a, b) => a - b);
}

/** The horizon, first/last ratio and spread of one layer's record. */
export function summarizeTimeFlow(f: TimeFlow, fraction = HORIZON_FRACTION): TimeFlowSummary {
  const n = f.norms.length;
  const last = f.norms[n - 1] ?? Number.NaN;
  const first = f.norms[0] ?? Number.NaN;
  let from = n - 1;
  while (from > 0 && f.norms[from - 1]! >= fraction * last) from--;
  const pos = f.norms.filter((v) => Number.isFinite(v) && v > 0);
  return {
    // NOTE: an overflowed (or zero) last step has no scale to measure the others against
    horizon: n && Number.isFinite(last) && last > 0 ? f.length - f.steps[from]! : Number.NaN,
    firstLast: first / last,
    spread: pos.length ? Math.max(...pos) / Math.min(...pos) : Number.NaN,
  };
}

/** A recurrent module as the recorder drives it (nn.RNN, nn.LSTM, nn.GRU). */
interface Tappable {
  timeTap: ((l: number, d: number) => TimeTap | null) | null;
}

function tappable(m: AnyModule): m is AnyModule & Tappable {
  return 'timeTap' in m && typeof (m as { mode?: unknown }).mode === 'string';
}

/**
 * Turns the recurrent layers' taps on for a monitored step and collects what they recorded. The Monitor owns one;
 * a step it does not monitor leaves the taps off, so the backward through time does no extra work.
 */
export class TimeFlowRecorder {
  readonly #modules: [string, AnyModule & Tappable][];
  #flows = new Map<string, TimeFlow>();
  readonly #masks = new Map<number, Uint8Array>();

  constructor(model: AnyModule) {
    this.#modules = [];
    for (const [name, m] of model.namedModules()) if (tappable(m)) this.#modules.push([name, m]);
  }

  /** Whether the model has recurrent layers to record. */
  get active(): boolean {
    return this.#modules.length > 0;
  }

  /** Before a step's forward pass: taps on when the step is monitored, off otherwise. */
  begin(monitored: boolean): void {
    if (this.#flows.size > 0) this.#flows = new Map();
    for (const [name, m] of this.#modules) m.timeTap = monitored ? (l, d) => this.#tap(name, l, d) : null;
  }

  /** After the step: what was recorded, in the order the layers ran (the taps stay as they are until `begin`). */
  end(): TimeFlow[] {
    return [...this.#flows.values()].filter((f) => f.steps.length > 0);
  }

  /** Turns every tap off. */
  detach(): void {
    for (const [, m] of this.#modules) m.timeTap = null;
  }

  #mask(T: number): Uint8Array {
    let m = this.#masks.get(T);
    if (!m) {
      m = new Uint8Array(T);
      for (const t of sampledSteps(T)) m[t] = 1;
      this.#masks.set(T, m);
    }
    return m;
  }

  #tap(layer: string, l: number, d: number): TimeTap {
    const sub = `l${l}${d ? '_reverse' : ''}`;
    const key = `${layer}\u0000${sub}`;
    // a new forward pass of the same layer (a second batch before the backward) starts its record again
    const flow: TimeFlow = { layer, sub, length: 0, steps: [], norms: [] };
    this.#flows.delete(key);
    this.#flows.set(key, flow);
    const at = new Map<number, number>();
    return {
      wants: (t, T) => this.#mask(T)[t] === 1,
      record: (t, T, ss) => {
        at.set(t, Math.sqrt(ss));
        // the backward runs from T − 1 down to 0: the record is complete, in ascending order, at t = 0
        if (t === 0) {
          flow.length = T;
          flow.steps = [...at.keys()].sort((a, b) => a - b);
          flow.norms = flow.steps.map((s) => {
            const v = at.get(s)!;
            return Number.isFinite(v) ? v : Number.NaN;
          });
        }
      },
    };
  }
}
