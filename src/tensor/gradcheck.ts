/**
 * Checks an op's analytic gradient against central finite differences, as `torch.autograd.gradcheck` does.
 *
 * The output is projected onto a fixed random direction R, s(x) = Σ R·f(x), so every output element matters and one
 * scalar suffices. The analytic gradient is ∂s/∂x from `backward(R)`; the numeric one is
 * (s(x + ε·eᵢ) − s(x − ε·eᵢ)) / 2ε per input element, with s summed in float64.
 *
 * NOTE: the kernels are float32, so ε is large by float64 standards (default 1e-2): a float32 output carries a rounding
 * error of about 6e-8 of its size, which the difference divides by 2ε. Keep inputs at least a few ε away from kinks
 * (0 for relu and abs, ties for max) or the difference straddles them.
 */
import { Rng } from './rng.js';
import { dispose, noGrad, type Tensor, tensor, tidy } from './tensor.js';

export interface GradcheckOptions {
  /** Step of the central difference (default 1e-2). */
  eps?: number;
  /** Largest accepted relative error |analytic − numeric| / max(|analytic|, |numeric|) (default 1e-2). */
  rtol?: number;
  /** Absolute errors up to `atol` always pass: gradients near zero are judged absolutely (default 1e-3). */
  atol?: number;
  /** Seed of the random projection R (default 0). */
  seed?: number;
}

export interface GradcheckResult {
  /** The largest |analytic − numeric| / max(|analytic|, |numeric|, atol / rtol) over every checked element. */
  maxRelError: number;
  /** The largest |analytic − numeric|. */
  maxAbsError: number;
  /** Whether every element passed (maxRelError <= rtol, and nothing was NaN). */
  ok: boolean;
  /** The element with the largest relative error: which input, its flat index, and both gradients. */
  worst: { input: number; index: number; analytic: number; numeric: number } | null;
}

/**
 * Compares the gradient `backward()` gives for every input with `requiresGrad` against central finite differences.
 * `fn` must be deterministic (draw any randomness from a fixed seed inside it) and must not modify its inputs.
 *
 * @param fn the function under test; called once with the graph recorded and twice per input element without
 * @param inputs its arguments; those with `requiresGrad` are checked, the others held fixed
 * @returns the largest errors and whether they are within tolerance
 * @example
 * const x = randn([3, 4], { seed: 0, requiresGrad: true });
 * const { ok, maxRelError } = gradcheck((a) => a.tanh().sum(1), [x]);
 */
export function gradcheck(
  fn: (...inputs: Tensor[]) => Tensor,
  inputs: readonly Tensor[],
  opts: GradcheckOptions = {},
): GradcheckResult {
  const eps = opts.eps ?? 1e-2;
  const rtol = opts.rtol ?? 1e-2;
  const atol = opts.atol ?? 1e-3;
  const checked = inputs.map((t, i) => (t.requiresGrad ? i : -1)).filter((i) => i >= 0);
  if (!checked.length) throw new Error('gradcheck(): no input has requiresGrad; nothing to check');
  for (const i of checked) {
    if (!inputs[i]!.isLeaf) throw new Error(`gradcheck(): input ${i} is not a leaf; pass tensors made by the caller`);
  }

  const rng = new Rng(opts.seed ?? 0);
  let proj: Float64Array = new Float64Array(0);
  const analytic = tidy(() => {
    const y = fn(...inputs);
    if (!y.requiresGrad) throw new Error('gradcheck(): the output does not depend on any input that requires grad');
    proj = Float64Array.from({ length: y.size }, () => Math.fround(rng.normal()));
    const saved = checked.map((i) => inputs[i]!.grad);
    for (const i of checked) inputs[i]!.grad = null;
    y.backward(tensor(proj, y.shape));
    return checked.map((i, k) => {
      const t = inputs[i]!;
      const g = t.grad ? Float64Array.from(t.grad.data) : new Float64Array(t.size);
      if (t.grad) dispose(t.grad);
      t.grad = saved[k] ?? null;
      return g;
    });
  });

  const project = (): number =>
    tidy(() =>
      noGrad(() => {
        const d = fn(...inputs).data;
        if (d.length !== proj.length) throw new Error('gradcheck(): fn returned outputs of different sizes');
        let s = 0;
        for (let k = 0; k < d.length; k++) s += proj[k]! * d[k]!;
        return s;
      }),
    );

  let maxRelError = 0;
  let maxAbsError = 0;
  let ok = true;
  let worst: GradcheckResult['worst'] = null;
  const floor = atol / rtol;
  for (const [k, i] of checked.entries()) {
    const t = inputs[i]!;
    for (let j = 0; j < t.size; j++) {
      // NOTE: read `data` afresh each time: on the wasm backend, memory growth inside fn replaces the views
      const x0 = t.data[j]!;
      const hi = Math.fround(x0 + eps);
      const lo = Math.fround(x0 - eps);
      t.data[j] = hi;
      const sHi = project();
      t.data[j] = lo;
      const sLo = project();
      t.data[j] = x0;
      const numeric = (sHi - sLo) / (hi - lo);
      const a = analytic[k]![j]!;
      const abs = Math.abs(a - numeric);
      const rel = abs / Math.max(Math.abs(a), Math.abs(numeric), floor);
      if (!(rel <= rtol)) ok = false;
      if (!(rel <= maxRelError)) {
        maxRelError = Number.isNaN(rel) ? Number.POSITIVE_INFINITY : rel;
        worst = { input: i, index: j, analytic: a, numeric };
      }
      if (abs > maxAbsError || Number.isNaN(abs)) maxAbsError = Number.isNaN(abs) ? Number.POSITIVE_INFINITY : abs;
    }
  }
  return { maxRelError, maxAbsError, ok, worst };
}
