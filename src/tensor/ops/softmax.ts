/** softmax and logSoftmax along an axis, stabilised by subtracting the row maximum. */
import { fromOp, type Tensor } from '../tensor.js';
import { permute } from './shape.js';
import { alloc, normAxis } from './util.js';

function softmaxOp(x: Tensor, axis: number, log: boolean): Tensor {
  const name = log ? 'logSoftmax' : 'softmax';
  const a = normAxis(axis, x.ndim, name);
  if (a !== x.ndim - 1) {
    // move the axis last, apply, move it back
    const perm = Array.from({ length: x.ndim }, (_, i) => i);
    perm.splice(a, 1);
    perm.push(a);
    const inv = new Array<number>(perm.length);
    for (let i = 0; i < perm.length; i++) inv[perm[i]!] = i;
    return permute(softmaxOp(permute(x, perm), -1, log), inv);
  }
  const cols = x.shape[a] ?? 1;
  const rows = cols === 0 ? 0 : x.size / cols;
  const out = alloc(x.shape);
  const be = out.storage.backend;
  be.softmax(x.buf, out.buf, rows, cols, log);
  return fromOp(name, out.storage, x.shape, [x], (g) => {
    const gx = alloc(x.shape);
    be.softmaxGrad(out.buf, g.buf, gx.buf, rows, cols, log);
    return [gx];
  });
}

/** exp(x) / Σ exp(x) along `axis` (default: the last). */
export const softmax = (x: Tensor, axis = -1): Tensor => softmaxOp(x, axis, false);
/** x − log Σ exp(x) along `axis` (default: the last), computed without forming the softmax. */
export const logSoftmax = (x: Tensor, axis = -1): Tensor => softmaxOp(x, axis, true);
