/**
 * The reference kernels of the convolution and pooling ops (spec-nn.ts): im2col and col2im, max and average pooling
 * and their gradients. native/kernels/conv.c and pool.c reproduce them bit for bit. The whole convolution (conv2d and
 * its gradients) is composed of the backend's own im2col, col2im and sgemm, so that the wasm backend runs it on its
 * kernels too; native/kernels/conv.c's version agrees with it to rounding.
 */
import { type Backend, type Buf, type ConvGeom, type PoolGeom, Unary } from './types.js';

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

/** maxPool2dSums (spec-nn.ts) on `be`'s kernels: maxPool2d, then sumSquaresRows over the input's planes. */
export function maxPool2dSums(be: Backend, x: Buf, out: Buf, sums: Buf, g: PoolGeom): number {
  be.maxPool2d(x, out, g);
  return be.sumSquaresRows(x, sums, g.planes, g.h * g.w);
}

/**
 * maxPool2dGradRelu (spec-nn.ts) on `be`'s kernels: maxPool2dGrad, then the ReLU's gradient (x > 0 where the ReLU's
 * input is), then each plane's sum (sumAxis).
 */
export function maxPool2dGradRelu(be: Backend, x: Buf, gy: Buf, dx: Buf, sums: Buf, g: PoolGeom): void {
  maxPool2dGrad(x, gy, dx, g);
  const xs = x.data;
  const ds = dx.data;
  for (let i = 0, n = g.planes * g.h * g.w; i < n; i++) ds[i] = xs[i]! > 0 ? ds[i]! : 0;
  be.sumAxis(dx, sums, g.planes, g.h * g.w, 1);
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

/** The layout of the whole convolution: one group's and one image's sizes and offsets. */
function wholeConv(g: ConvGeom, oc: number, groups: number) {
  const icg = g.c;
  const ocg = oc / groups;
  const ckk = icg * g.kh * g.kw;
  const P = g.oh * g.ow;
  const plane = g.h * g.w;
  return {
    ocg,
    ckk,
    P,
    // 1×1, stride 1, no padding: an image's group is its own columns matrix [icg, h·w]
    direct: g.kh === 1 && g.kw === 1 && g.sh === 1 && g.sw === 1 && g.ph === 0 && g.pw === 0,
    one: { ...g, n: 1 } as ConvGeom,
    xOff: (i: number, gi: number) => (i * icg * groups + gi * icg) * plane, // image i, group gi, in x (and gx)
    yOff: (i: number, gi: number) => (i * oc + gi * ocg) * P, // in the output (and its gradient)
    wOff: (gi: number) => gi * ocg * ckk, // the group's rows of the weight
  };
}

/**
 * conv2d (spec-nn.ts) on `be`'s kernels: image by image (and group by group) the image's im2col columns, then one
 * matrix product weight·columns written straight into the image's rows of the NCHW output. One image's columns stay
 * in cache where the whole batch's would not (a ResNet's first stage: 0.6 MB against 38 MB).
 */
export function conv2d(
  be: Backend,
  x: Buf,
  weight: Buf,
  out: Buf,
  g: ConvGeom,
  oc: number,
  groups: number,
  accumulate: boolean,
): void {
  const { ocg, ckk, P, direct, one, xOff, yOff, wOff } = wholeConv(g, oc, groups);
  const cols = direct ? null : be.alloc(ckk * P);
  const beta = accumulate ? 1 : 0;
  for (let i = 0; i < g.n; i++) {
    for (let gi = 0; gi < groups; gi++) {
      let src = x;
      let sOff = xOff(i, gi);
      if (cols) {
        be.im2col(x, sOff, cols, one);
        src = cols;
        sOff = 0;
      }
      be.sgemm(false, false, ocg, P, ckk, 1, weight, wOff(gi), ckk, src, sOff, P, beta, out, yOff(i, gi), P);
    }
  }
  if (cols) be.free(cols);
}

/**
 * conv2dBias (spec-nn.ts): every image's rows start as their channel's bias (+ 0), then conv2d accumulates; with
 * relu, the ReLU over the whole output after it (unary's Relu).
 */
export function conv2dBias(
  be: Backend,
  x: Buf,
  weight: Buf,
  bias: Buf,
  out: Buf,
  g: ConvGeom,
  oc: number,
  groups: number,
  relu: boolean,
): void {
  const P = g.oh * g.ow;
  const bs = bias.data;
  const os = out.data;
  for (let i = 0; i < g.n; i++)
    for (let o = 0; o < oc; o++) os.fill(bs[o]! + 0, (i * oc + o) * P, (i * oc + o + 1) * P);
  be.conv2d(x, weight, out, g, oc, groups, true);
  if (relu) be.unary(Unary.Relu, out, out, g.n * oc * P, 0, 0);
}

/** conv2dGradInput (spec-nn.ts): each image's columns' gradient weightᵀ·gy_i, folded back into gx with col2im. */
export function conv2dGradInput(
  be: Backend,
  gy: Buf,
  weight: Buf,
  gx: Buf,
  g: ConvGeom,
  oc: number,
  groups: number,
): void {
  const { ocg, ckk, P, direct, one, xOff, yOff, wOff } = wholeConv(g, oc, groups);
  const dcols = direct ? null : be.alloc(ckk * P);
  for (let i = 0; i < g.n; i++) {
    for (let gi = 0; gi < groups; gi++) {
      const dst = dcols ?? gx;
      const dOff = dcols ? 0 : xOff(i, gi);
      be.sgemm(true, false, ckk, P, ocg, 1, weight, wOff(gi), ckk, gy, yOff(i, gi), P, 0, dst, dOff, P);
      if (dcols) be.col2im(dcols, gx, xOff(i, gi), one);
    }
  }
  if (dcols) be.free(dcols);
}

/** conv2dGradWeight (spec-nn.ts): gw += gy_i · columns_iᵀ image after image (the first one overwrites). */
export function conv2dGradWeight(be: Backend, x: Buf, gy: Buf, gw: Buf, g: ConvGeom, oc: number, groups: number): void {
  const { ocg, ckk, P, direct, one, xOff, yOff, wOff } = wholeConv(g, oc, groups);
  const cols = direct ? null : be.alloc(ckk * P);
  for (let i = 0; i < g.n; i++) {
    for (let gi = 0; gi < groups; gi++) {
      let src = x;
      let sOff = xOff(i, gi);
      if (cols) {
        be.im2col(x, sOff, cols, one);
        src = cols;
        sOff = 0;
      }
      be.sgemm(false, true, ocg, ckk, P, 1, gy, yOff(i, gi), P, src, sOff, P, i === 0 ? 0 : 1, gw, wOff(gi), ckk);
    }
  }
  if (cols) be.free(cols);
}
