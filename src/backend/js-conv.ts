/**
 * The reference kernels of the convolution and pooling ops (spec-nn.ts): im2col and col2im, max and average pooling
 * and their gradients. native/kernels/conv.c and pool.c reproduce them bit for bit.
 */
import type { Buf, ConvGeom, PoolGeom } from './types.js';

/** im2col (spec-nn.ts). */
export function im2col(x: Buf, xOff: number, cols: Buf, g: ConvGeom): void {
  const xs = x.data;
  const cs = cols.data;
  const L = g.n * g.oh * g.ow;
  const plane = g.oh * g.ow;
  for (let c = 0; c < g.c; c++) {
    for (let ki = 0; ki < g.kh; ki++) {
      for (let kj = 0; kj < g.kw; kj++) {
        const rowBase = ((c * g.kh + ki) * g.kw + kj) * L;
        for (let n = 0; n < g.n; n++) {
          const xb = xOff + (n * g.c + c) * g.h * g.w;
          const cb = rowBase + n * plane;
          for (let oy = 0; oy < g.oh; oy++) {
            const iy = oy * g.sh - g.ph + ki * g.dh;
            const cr = cb + oy * g.ow;
            if (iy < 0 || iy >= g.h) {
              cs.fill(0, cr, cr + g.ow);
              continue;
            }
            const xr = xb + iy * g.w;
            for (let ox = 0; ox < g.ow; ox++) {
              const ix = ox * g.sw - g.pw + kj * g.dw;
              cs[cr + ox] = ix >= 0 && ix < g.w ? xs[xr + ix]! : 0;
            }
          }
        }
      }
    }
  }
}

/** col2im (spec-nn.ts). */
export function col2im(cols: Buf, dx: Buf, dxOff: number, g: ConvGeom): void {
  const cs = cols.data;
  const ds = dx.data;
  ds.fill(0, dxOff, dxOff + g.n * g.c * g.h * g.w);
  const L = g.n * g.oh * g.ow;
  const plane = g.oh * g.ow;
  for (let c = 0; c < g.c; c++) {
    for (let ki = 0; ki < g.kh; ki++) {
      for (let kj = 0; kj < g.kw; kj++) {
        const rowBase = ((c * g.kh + ki) * g.kw + kj) * L;
        for (let n = 0; n < g.n; n++) {
          const xb = dxOff + (n * g.c + c) * g.h * g.w;
          const cb = rowBase + n * plane;
          for (let oy = 0; oy < g.oh; oy++) {
            const iy = oy * g.sh - g.ph + ki * g.dh;
            if (iy < 0 || iy >= g.h) continue;
            const cr = cb + oy * g.ow;
            const xr = xb + iy * g.w;
            for (let ox = 0; ox < g.ow; ox++) {
              const ix = ox * g.sw - g.pw + kj * g.dw;
              if (ix >= 0 && ix < g.w) ds[xr + ix]! += cs[cr + ox]!;
            }
          }
        }
      }
    }
  }
}

/** maxPool2d (spec-nn.ts). */
export function maxPool2d(x: Buf, out: Buf, g: PoolGeom): void {
  const xs = x.data;
  const os = out.data;
  for (let p = 0; p < g.planes; p++) {
    const xb = p * g.h * g.w;
    const ob = p * g.oh * g.ow;
    for (let oy = 0; oy < g.oh; oy++) {
      for (let ox = 0; ox < g.ow; ox++) {
        let best = Number.NEGATIVE_INFINITY;
        for (let ki = 0; ki < g.kh; ki++) {
          const iy = oy * g.sh - g.ph + ki;
          if (iy < 0 || iy >= g.h) continue;
          for (let kj = 0; kj < g.kw; kj++) {
            const ix = ox * g.sw - g.pw + kj;
            if (ix < 0 || ix >= g.w) continue;
            const v = xs[xb + iy * g.w + ix]!;
            if (v > best || v !== v) best = v;
          }
        }
        os[ob + oy * g.ow + ox] = best;
      }
    }
  }
}

/** maxPool2dGrad (spec-nn.ts). */
export function maxPool2dGrad(x: Buf, gy: Buf, dx: Buf, g: PoolGeom): void {
  const xs = x.data;
  const gs = gy.data;
  const ds = dx.data;
  ds.fill(0, 0, g.planes * g.h * g.w);
  for (let p = 0; p < g.planes; p++) {
    const xb = p * g.h * g.w;
    const ob = p * g.oh * g.ow;
    for (let oy = 0; oy < g.oh; oy++) {
      for (let ox = 0; ox < g.ow; ox++) {
        let best = Number.NEGATIVE_INFINITY;
        let bi = -1;
        for (let ki = 0; ki < g.kh; ki++) {
          const iy = oy * g.sh - g.ph + ki;
          if (iy < 0 || iy >= g.h) continue;
          for (let kj = 0; kj < g.kw; kj++) {
            const ix = ox * g.sw - g.pw + kj;
            if (ix < 0 || ix >= g.w) continue;
            const v = xs[xb + iy * g.w + ix]!;
            // As PyTorch's CPU kernel: no early exit, so the last NaN of the window takes the gradient.
            if (v > best || bi < 0 || v !== v) {
              best = v;
              bi = iy * g.w + ix;
            }
          }
        }
        if (bi >= 0) ds[xb + bi]! += gs[ob + oy * g.ow + ox]!;
      }
    }
  }
}

/** avgPool2d (spec-nn.ts). */
export function avgPool2d(x: Buf, out: Buf, g: PoolGeom, countIncludePad: boolean): void {
  const xs = x.data;
  const os = out.data;
  for (let p = 0; p < g.planes; p++) {
    const xb = p * g.h * g.w;
    const ob = p * g.oh * g.ow;
    for (let oy = 0; oy < g.oh; oy++) {
      for (let ox = 0; ox < g.ow; ox++) {
        let s = 0;
        let cnt = 0;
        const y0 = oy * g.sh - g.ph;
        const x0 = ox * g.sw - g.pw;
        for (let ki = 0; ki < g.kh; ki++) {
          const iy = y0 + ki;
          if (iy < 0 || iy >= g.h) continue;
          for (let kj = 0; kj < g.kw; kj++) {
            const ix = x0 + kj;
            if (ix < 0 || ix >= g.w) continue;
            s += xs[xb + iy * g.w + ix]!;
            cnt++;
          }
        }
        os[ob + oy * g.ow + ox] = s / (countIncludePad ? poolDivisor(g, y0, x0) : cnt);
      }
    }
  }
}

/** avgPool2dGrad (spec-nn.ts). */
export function avgPool2dGrad(gy: Buf, dx: Buf, g: PoolGeom, countIncludePad: boolean): void {
  const gs = gy.data;
  const ds = dx.data;
  ds.fill(0, 0, g.planes * g.h * g.w);
  for (let p = 0; p < g.planes; p++) {
    const xb = p * g.h * g.w;
    const ob = p * g.oh * g.ow;
    for (let oy = 0; oy < g.oh; oy++) {
      for (let ox = 0; ox < g.ow; ox++) {
        const y0 = oy * g.sh - g.ph;
        const x0 = ox * g.sw - g.pw;
        let cnt = 0;
        if (!countIncludePad) {
          for (let ki = 0; ki < g.kh; ki++)
            for (let kj = 0; kj < g.kw; kj++) {
              const iy = y0 + ki;
              const ix = x0 + kj;
              if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) cnt++;
            }
        }
        const gv = gs[ob + oy * g.ow + ox]! / (countIncludePad ? poolDivisor(g, y0, x0) : cnt);
        for (let ki = 0; ki < g.kh; ki++) {
          const iy = y0 + ki;
          if (iy < 0 || iy >= g.h) continue;
          for (let kj = 0; kj < g.kw; kj++) {
            const ix = x0 + kj;
            if (ix < 0 || ix >= g.w) continue;
            ds[xb + iy * g.w + ix]! += gv;
          }
        }
      }
    }
  }
}

/** PyTorch's divisor with count_include_pad: the window clipped to the padded input. */
function poolDivisor(g: PoolGeom, y0: number, x0: number): number {
  const y1 = Math.min(y0 + g.kh, g.h + g.ph);
  const x1 = Math.min(x0 + g.kw, g.w + g.pw);
  return (y1 - y0) * (x1 - x0);
}
