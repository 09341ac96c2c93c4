/**
 * The int32 layout in which the C kernels (native/kernels.h: GG_CONV_GEOM, GG_POOL_GEOM) take a convolution or pooling
 * geometry. Shared by the native and wasm backends; kept apart from both so that a browser bundle of the wasm backend
 * does not pull in the native one's Node imports.
 */
import type { ConvGeom, PoolGeom } from './types.js';

/** Writes a ConvGeom into the int32 layout the C kernels read (kernels.h, GG_CONV_GEOM). */
export function writeConvGeom(out: Int32Array, at: number, g: ConvGeom): void {
  out[at] = g.n;
  out[at + 1] = g.c;
  out[at + 2] = g.h;
  out[at + 3] = g.w;
  out[at + 4] = g.kh;
  out[at + 5] = g.kw;
  out[at + 6] = g.sh;
  out[at + 7] = g.sw;
  out[at + 8] = g.ph;
  out[at + 9] = g.pw;
  out[at + 10] = g.dh;
  out[at + 11] = g.dw;
  out[at + 12] = g.oh;
  out[at + 13] = g.ow;
}

/** Writes a PoolGeom into the int32 layout the C kernels read (kernels.h, GG_POOL_GEOM). */
export function writePoolGeom(out: Int32Array, at: number, g: PoolGeom): void {
  out[at] = g.planes;
  out[at + 1] = g.h;
  out[at + 2] = g.w;
  out[at + 3] = g.kh;
  out[at + 4] = g.kw;
  out[at + 5] = g.sh;
  out[at + 6] = g.sw;
  out[at + 7] = g.ph;
  out[at + 8] = g.pw;
  out[at + 9] = g.oh;
  out[at + 10] = g.ow;
}
