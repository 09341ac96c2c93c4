/** What the monitor's forward hooks read from a module's input or output. */
import { Tensor } from '../tensor/tensor.js';

/**
 * The tensor a hook's input or output stands for: itself, the first tensor of a tuple, or the `output` of an object
 * (RNNs return `{ output, h }`).
 */
export function firstTensor(v: unknown): Tensor | null {
  if (v instanceof Tensor) return v.storage.buf ? v : null;
  if (Array.isArray(v)) {
    for (const x of v) if (x instanceof Tensor && x.storage.buf) return x;
  } else if (v && typeof v === 'object') {
    const o = (v as { output?: unknown }).output;
    if (o instanceof Tensor && o.storage.buf) return o;
  }
  return null;
}
